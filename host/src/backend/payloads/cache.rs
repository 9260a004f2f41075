//! Recently stowed and fetched payloads, bounded in bytes.
//!
//! Two jobs: a replay reads a run's large input on every activation, which
//! would otherwise be a blob read each time; and every write of a run
//! record carries that input again, which would otherwise be hashed (and
//! stored) again each time. Finding the payload here by its run and length
//! and comparing the bytes is much cheaper than either.

use super::PayloadRef;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub(super) struct PayloadCache {
    capacity: usize,
    used: usize,
    entries: HashMap<PayloadRef, Arc<str>>,
    /// Oldest first; an entry used again moves to the back.
    order: VecDeque<PayloadRef>,
}

impl PayloadCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&mut self, key: &PayloadRef) -> Option<Arc<str>> {
        let text = self.entries.get(key)?.clone();
        self.touch(key);
        Some(text)
    }

    /// The reference under which `text` of `run` was stowed or fetched, if
    /// it is still here.
    pub fn find(&mut self, run: &crate::model::RunId, text: &str) -> Option<PayloadRef> {
        let key = self
            .entries
            .iter()
            .find(|(k, v)| k.run == *run && k.len == text.len() && ***v == *text)
            .map(|(k, _)| k.clone())?;
        self.touch(&key);
        Some(key)
    }

    pub fn insert(&mut self, key: PayloadRef, text: Arc<str>) {
        if text.len() > self.capacity || self.entries.contains_key(&key) {
            return;
        }
        while self.used + text.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.entries.remove(&old) {
                self.used -= gone.len();
            }
        }
        self.used += text.len();
        self.order.push_back(key.clone());
        self.entries.insert(key, text);
    }

    fn touch(&mut self, key: &PayloadRef) {
        if let Some(i) = self.order.iter().position(|k| k == key)
            && let Some(k) = self.order.remove(i)
        {
            self.order.push_back(k);
        }
    }
}
