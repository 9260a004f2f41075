//! Events: named messages sent to a run from outside, kept in the run's
//! inbox until a wait of that name takes them.

use super::{Millis, RunId};
use serde::{Deserialize, Serialize};

/// Longest event name; names are `[A-Za-z0-9_.:-]`, so they can be part of
/// a storage key without escaping.
pub const MAX_EVENT_NAME: usize = 128;

/// Longest sender-supplied event id.
pub const MAX_EVENT_ID: usize = 255;

/// An event in a run's inbox.
///
/// Events of one name are numbered in the order they were stored (`seq`,
/// from 0) and taken in that order, each by exactly one wait step. Which
/// wait took which event is recorded (`taken_by`), and the wait's step
/// records the payload, so a replay sees what the first execution saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub run_id: RunId,
    pub name: String,
    pub seq: u64,
    /// The sender's id: sending again with the same id is the same event.
    pub event_id: String,
    /// JSON text.
    pub payload: String,
    pub sent_at: Millis,
    /// The wait step that took the event, once one did.
    pub taken_by: Option<String>,
}

/// The result of storing an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSent {
    /// A new event, now in the inbox.
    Stored(EventRecord),
    /// An event with this id was stored before; nothing changed.
    Duplicate(EventRecord),
}

impl EventSent {
    pub fn record(&self) -> &EventRecord {
        match self {
            Self::Stored(e) | Self::Duplicate(e) => e,
        }
    }
}

/// Whether `name` can name an event (it becomes part of storage keys).
pub fn valid_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Whether `id` can be an event id: printable ASCII, as an HTTP
/// `Idempotency-Key` is.
pub fn valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EVENT_ID
        && id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_are_checked() {
        assert!(valid_event_name("approval"));
        assert!(valid_event_name("order.paid:v2"));
        assert!(!valid_event_name(""));
        assert!(!valid_event_name("a#b"));
        assert!(!valid_event_name("a b"));
        assert!(!valid_event_name(&"x".repeat(MAX_EVENT_NAME + 1)));
        assert!(valid_event_id("mail-42#retry"));
        assert!(valid_event_id("has space"));
        assert!(!valid_event_id("tab\there"));
        assert!(!valid_event_id(""));
    }
}
