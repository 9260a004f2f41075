//! The activation's wall-clock budget, charged for the guest's own time.
//!
//! `WEFT_ACTIVATION_TIMEOUT_SECS` bounds how long the workflow's code may
//! run in one activation. Time spent in host calls (an inline RPC, a store
//! write, an in-place retry wait) is the host's, not the guest's: a run of
//! healthy slow RPCs must not fail `activation_timeout`. [`Timed`] wraps the
//! step driver and books every call into a [`HostTime`]; the activation's
//! deadline moves out by that much, and never passes while a host call is
//! under way.

use super::ActivationEnd;
use super::driver::{DriverError, Probe, Resolution, StepDriver};
use crate::model::{LogLine, Millis, StepCall, StepOutcome, StepRecord};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often an expired budget is looked at again while a host call runs.
const HOST_CALL_POLL: Duration = Duration::from_millis(100);

/// Time spent in host calls during one activation.
#[derive(Debug, Default)]
pub(super) struct HostTime {
    state: Mutex<Calls>,
}

#[derive(Debug, Default)]
struct Calls {
    finished: Duration,
    current: Option<Instant>,
}

impl HostTime {
    fn enter(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.current = Some(Instant::now());
        }
    }

    fn leave(&self) {
        if let Ok(mut s) = self.state.lock()
            && let Some(since) = s.current.take()
        {
            s.finished += since.elapsed();
        }
    }

    /// The host's share so far (the call under way included), and whether
    /// a call is under way.
    fn spent(&self) -> (Duration, bool) {
        self.state.lock().map_or((Duration::ZERO, false), |s| {
            let current = s.current.map(|since| since.elapsed());
            (s.finished + current.unwrap_or_default(), current.is_some())
        })
    }

    /// When the guest's budget, started at `started`, runs out as things
    /// stand: later by every host call, and not before `HOST_CALL_POLL`
    /// from now while a call is under way.
    pub(super) fn deadline(&self, started: Instant, budget: Duration) -> Instant {
        let (spent, _) = self.spent();
        self.outside_calls(started + budget + spent)
    }

    /// `at`, or, while a host call is under way, no sooner than
    /// `HOST_CALL_POLL` from now: an activation is only ever stopped in the
    /// guest's own code, never half-way through a store write or the send
    /// of the message that carries a new step.
    pub(super) fn outside_calls(&self, at: Instant) -> Instant {
        let (_, in_call) = self.spent();
        if in_call {
            at.max(Instant::now() + HOST_CALL_POLL)
        } else {
            at
        }
    }
}

/// Books a host call for as long as it is alive (also when the call's
/// future is dropped half-way).
struct InCall<'a>(&'a HostTime);

impl<'a> InCall<'a> {
    fn new(host: &'a HostTime) -> Self {
        host.enter();
        Self(host)
    }
}

impl Drop for InCall<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A step driver whose calls are booked as host time.
pub(super) struct Timed {
    inner: Box<dyn StepDriver>,
    host: Arc<HostTime>,
}

impl Timed {
    pub(super) fn new(inner: Box<dyn StepDriver>, host: Arc<HostTime>) -> Self {
        Self { inner, host }
    }
}

#[async_trait]
impl StepDriver for Timed {
    async fn schedule(&mut self, seq: u32, call: &StepCall) -> Result<Resolution, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner.schedule(seq, call).await
    }

    async fn in_flight(&mut self, step: &StepRecord) -> Result<Resolution, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner.in_flight(step).await
    }

    async fn inline_attempt(
        &mut self,
        seq: u32,
        call: &StepCall,
        attempt: u32,
        stored: Option<&StepRecord>,
        outcome: StepOutcome,
    ) -> Result<Resolution, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner
            .inline_attempt(seq, call, attempt, stored, outcome)
            .await
    }

    async fn start(&mut self, seq: u32, call: &StepCall) -> Result<StepRecord, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner.start(seq, call).await
    }

    async fn probe(&mut self, step: &StepRecord) -> Result<Probe, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner.probe(step).await
    }

    async fn join(
        &mut self,
        seq: u32,
        call: &StepCall,
        chosen: &str,
    ) -> Result<Resolution, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner.join(seq, call, chosen).await
    }

    async fn await_members(
        &mut self,
        members: &[StepRecord],
        wake_at: Option<Millis>,
    ) -> Result<Resolution, DriverError> {
        let _booked = InCall::new(&self.host);
        self.inner.await_members(members, wake_at).await
    }

    fn log(&mut self, line: LogLine) {
        self.inner.log(line);
    }

    async fn finish(&mut self, outcome: &ActivationEnd) -> Result<(), DriverError> {
        self.inner.finish(outcome).await
    }
}
