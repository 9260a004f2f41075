//! Fan-out and join: start several steps, then wait for all of them, the
//! first of them, or enough of them.
//!
//! Starting a step records it and sets it going (a worker picks up the
//! RPC, the timer runs) without waiting; the [`Started`] handle it returns
//! is awaited later. No async runtime is involved: an await whose step has
//! not finished suspends the whole workflow, and the host replays it once
//! an outcome arrives, exactly as a plain [`Context::rpc`] would.
//!
//! ```no_run
//! # use weft_sdk::{Context, Error, Completion};
//! # use serde_json::{json, Value};
//! fn quotes(ctx: &mut Context, vendors: Vec<String>) -> Result<Vec<Value>, Error> {
//!     let started = vendors
//!         .iter()
//!         .map(|v| ctx.start_rpc::<_, Value>(&format!("quote-{v}"), "vendors/quote", &json!({ "vendor": v })))
//!         .collect::<Result<Vec<_>, _>>()?;
//!     // Any two answers will do; the others are abandoned when the run ends.
//!     let joined = ctx.join_until("enough-quotes", &started, Completion::successes(2));
//!     Ok(joined.successes().cloned().collect())
//! }
//! ```

use super::{Context, Error, StepOptions, from_wit_error, steps};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::time::Duration;

/// A step started without waiting for it (a fan-out member), whose outcome
/// decodes as `T`. Await it with [`Context::wait`], or several at once with
/// [`Context::join_all`], [`Context::select`] and [`Context::join_until`].
#[derive(Debug)]
#[must_use = "a started step runs anyway; await it to use its outcome"]
pub struct Started<T> {
    name: String,
    _outcome: PhantomData<fn() -> T>,
}

impl<T> Clone for Started<T> {
    fn clone(&self) -> Self {
        Self::named(self.name.clone())
    }
}

impl<T> Started<T> {
    fn named(name: String) -> Self {
        Self {
            name,
            _outcome: PhantomData,
        }
    }

    /// The step's name in the journal (with its `#n` suffix, if any).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same step, its outcome decoded as `U`: to join members of
    /// different types in one [`Context::select`] (a timer's `null`
    /// decodes as `serde_json::Value`, for one).
    pub fn retype<U>(self) -> Started<U> {
        Started::named(self.name)
    }
}

/// When [`Context::join_until`] stops waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Stop once this many members succeeded (`None`: all of them).
    pub min_successes: Option<usize>,
    /// Stop once more than this many members failed (`None`: never stop
    /// early for failures).
    pub max_failures: Option<usize>,
}

impl Completion {
    /// Wait for every member.
    pub fn all() -> Self {
        Self::default()
    }

    /// Stop at the first `k` successes.
    pub fn successes(k: usize) -> Self {
        Self {
            min_successes: Some(k),
            max_failures: None,
        }
    }

    /// And stop as soon as more than `f` members failed.
    pub fn tolerating(mut self, f: usize) -> Self {
        self.max_failures = Some(f);
        self
    }
}

/// What [`Context::join_until`] saw: the outcomes in the order the members
/// finished (by their index in the list given), and whether the rule was
/// met. Members not listed were still running when it stopped.
#[derive(Debug)]
pub struct Joined<T> {
    pub finished: Vec<(usize, Result<T, Error>)>,
    /// The success count was reached (or every member finished within the
    /// failure allowance).
    pub satisfied: bool,
}

impl<T> Joined<T> {
    /// The successful outcomes, in the order they finished.
    pub fn successes(&self) -> impl Iterator<Item = &T> {
        self.finished.iter().filter_map(|(_, r)| r.as_ref().ok())
    }

    /// The failures, in the order they finished.
    pub fn failures(&self) -> impl Iterator<Item = &Error> {
        self.finished.iter().filter_map(|(_, r)| r.as_ref().err())
    }
}

impl Context {
    /// Starts RPC `rpc` with `input` like [`Context::rpc`], without waiting.
    pub fn start_rpc<I: Serialize, O: DeserializeOwned>(
        &mut self,
        step: &str,
        rpc: &str,
        input: &I,
    ) -> Result<Started<O>, Error> {
        self.start_rpc_with(step, rpc, input, &StepOptions::default())
    }

    /// [`Context::start_rpc`] with explicit options.
    pub fn start_rpc_with<I: Serialize, O: DeserializeOwned>(
        &mut self,
        step: &str,
        rpc: &str,
        input: &I,
        options: &StepOptions,
    ) -> Result<Started<O>, Error> {
        let name = self.unique(step);
        let input = weft_guest_core::encode(&format!("the input of step `{name}`"), input)?;
        steps::start_rpc(&name, rpc, &input, options.to_wit());
        Ok(Started::named(name))
    }

    /// Starts a durable timer like [`Context::sleep`], without waiting: a
    /// member that finishes after `duration` (a deadline for a race).
    pub fn start_sleep(&mut self, step: &str, duration: Duration) -> Started<()> {
        let name = self.unique(step);
        steps::start_sleep(&name, duration.as_millis() as u64);
        Started::named(name)
    }

    /// Starts a wait for event `event` like [`Context::wait_event`],
    /// without waiting.
    pub fn start_wait_event<T: DeserializeOwned>(
        &mut self,
        step: &str,
        event: &str,
        timeout: Option<Duration>,
    ) -> Started<T> {
        let name = self.unique(step);
        steps::start_event_wait(&name, event, timeout.map(|t| t.as_millis() as u64));
        Started::named(name)
    }

    /// Starts a wait for the callback with `token` like
    /// [`Context::await_callback`], without waiting.
    pub fn start_await_callback<T: DeserializeOwned>(
        &mut self,
        step: &str,
        token: &str,
    ) -> Started<T> {
        let name = self.unique(step);
        steps::start_callback_wait(&name, token);
        Started::named(name)
    }

    /// Starts a run of the deployed workflow `workflow` with `input` as a
    /// child of this run and returns at once; [`Context::wait`] gives the
    /// child's output, or its error as an `Err` (never a crash of this
    /// run). The child is pinned to the workflow's newest version now, and
    /// is cancelled if this run is cancelled or ends first.
    pub fn start_child<I: Serialize, O: DeserializeOwned>(
        &mut self,
        step: &str,
        workflow: &str,
        input: &I,
    ) -> Result<Started<O>, Error> {
        let name = self.unique(step);
        let input = weft_guest_core::encode(&format!("the input of child step `{name}`"), input)?;
        steps::start_child(&name, workflow, &input);
        Ok(Started::named(name))
    }

    /// Runs workflow `workflow` as a child and waits for its output:
    /// [`Context::start_child`] then [`Context::wait`].
    pub fn child<I: Serialize, O: DeserializeOwned>(
        &mut self,
        step: &str,
        workflow: &str,
        input: &I,
    ) -> Result<O, Error> {
        let started = self.start_child(step, workflow, input)?;
        self.wait(&started)
    }

    /// Starts workflow `workflow` as a detached child and returns its run
    /// id: this run neither waits for it nor cancels it.
    pub fn spawn_child<I: Serialize>(
        &mut self,
        step: &str,
        workflow: &str,
        input: &I,
    ) -> Result<String, Error> {
        let name = self.unique(step);
        let input = weft_guest_core::encode(&format!("the input of child step `{name}`"), input)?;
        steps::spawn_child(&name, workflow, &input).map_err(from_wit_error)
    }

    /// Waits for `started` and returns its outcome (the same one however
    /// often it is awaited).
    pub fn wait<T: DeserializeOwned>(&mut self, started: &Started<T>) -> Result<T, Error> {
        // A timer's outcome is `null`, which `()` decodes from.
        let result = steps::await_step(&started.name).map_err(from_wit_error)?;
        weft_guest_core::decode(&format!("the result of step `{}`", started.name), &result)
    }

    /// Waits for every member and returns their outcomes in the order
    /// given. One activation takes every outcome that has arrived, so N
    /// members cost O(N), whatever order they finish in.
    pub fn join_all<T: DeserializeOwned>(
        &mut self,
        started: &[Started<T>],
    ) -> Vec<Result<T, Error>> {
        started.iter().map(|s| self.wait(s)).collect()
    }

    /// Waits for the first of `started` to finish and returns its index in
    /// the slice and its outcome. Which one it was is recorded as join step
    /// `step`, so a replay gets the same answer. The others keep running.
    pub fn select<T: DeserializeOwned>(
        &mut self,
        step: &str,
        started: &[Started<T>],
    ) -> (usize, Result<T, Error>) {
        let name = self.unique(step);
        let members: Vec<String> = started.iter().map(|s| s.name.clone()).collect();
        let first = steps::await_any(&name, &members);
        // The host only ever names one of the members it was given.
        let index = members.iter().position(|m| *m == first).unwrap_or(0);
        let outcome = match started.get(index) {
            Some(member) => self.wait(member),
            None => Err(Error::new("step_protocol", "await-any over no members")),
        };
        (index, outcome)
    }

    /// Waits for members in the order they finish until `rule` is met:
    /// enough successes, or too many failures (or every member finished).
    /// Each wait is a join step named after `step`, so a replay sees the
    /// same order. Members left running are abandoned when the run ends.
    pub fn join_until<T: DeserializeOwned>(
        &mut self,
        step: &str,
        started: &[Started<T>],
        rule: Completion,
    ) -> Joined<T> {
        let wanted = rule.min_successes.unwrap_or(started.len());
        let mut open: Vec<usize> = (0..started.len()).collect();
        let mut finished = Vec::new();
        let (mut ok, mut failed) = (0usize, 0usize);
        let mut satisfied = ok >= wanted;
        while !satisfied && !open.is_empty() {
            let members: Vec<Started<T>> = open
                .iter()
                .filter_map(|i| started.get(*i).cloned())
                .collect();
            let (at, outcome) = self.select(step, &members);
            let index = open.remove(at.min(open.len().saturating_sub(1)));
            match &outcome {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
            finished.push((index, outcome));
            if rule.max_failures.is_some_and(|f| failed > f) {
                break;
            }
            satisfied = ok >= wanted;
        }
        if open.is_empty() && rule.max_failures.is_none_or(|f| failed <= f) {
            satisfied = satisfied || rule.min_successes.is_none();
        }
        Joined {
            finished,
            satisfied,
        }
    }

    /// Runs `start` for every item with at most `limit` members in flight:
    /// starts `limit`, then one more each time one finishes. Returns the
    /// outcomes in the items' order. Which member finished when is recorded
    /// as join steps named after `step`.
    pub fn map_bounded<Item, T, F>(
        &mut self,
        step: &str,
        items: Vec<Item>,
        limit: usize,
        mut start: F,
    ) -> Result<Vec<Result<T, Error>>, Error>
    where
        T: DeserializeOwned,
        F: FnMut(&mut Context, usize, Item) -> Result<Started<T>, Error>,
    {
        let limit = limit.max(1);
        let total = items.len();
        let mut items = items.into_iter().enumerate();
        let mut results: Vec<Option<Result<T, Error>>> = (0..total).map(|_| None).collect();
        let mut flying: Vec<(usize, Started<T>)> = Vec::new();
        loop {
            while flying.len() < limit {
                let Some((i, item)) = items.next() else { break };
                flying.push((i, start(self, i, item)?));
            }
            if flying.is_empty() {
                break;
            }
            let members: Vec<Started<T>> = flying.iter().map(|(_, s)| s.clone()).collect();
            let (at, outcome) = self.select(step, &members);
            let (index, _) = flying.remove(at.min(flying.len() - 1));
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(outcome);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(Error::new("step_protocol", "a member was never awaited")))
            })
            .collect())
    }
}
