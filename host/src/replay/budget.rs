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
    /// Forgets the calls booked so far: a new leg starts (see [`Leg`]).
    fn reset(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = Calls::default();
        }
    }

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

/// The leg of an activation under way. An activation whose guest parks
/// between two of its run's activations ([`super::park`]) runs in legs,
/// one per activation of the run: each gets the guest's budget afresh
/// (counted from its own start, less its own host time) and the end of
/// the invocation that carries it. While the guest is parked no budget
/// runs at all.
#[derive(Debug)]
pub(super) struct Leg {
    pub(super) host_time: Arc<HostTime>,
    clock: Mutex<LegClock>,
    /// Signalled when the guest parks or a new leg starts, so whoever
    /// watches the budget looks again.
    changed: tokio::sync::Notify,
}

#[derive(Debug, Clone, Copy)]
struct LegClock {
    started: Instant,
    ends_by: Option<Instant>,
    parked: bool,
}

impl Leg {
    pub(super) fn new(ends_by: Option<Instant>) -> Self {
        Self {
            host_time: Arc::default(),
            clock: Mutex::new(LegClock {
                started: Instant::now(),
                ends_by,
                parked: false,
            }),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn clock(&self) -> LegClock {
        match self.clock.lock() {
            Ok(c) => *c,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn set(&self, change: impl FnOnce(&mut LegClock)) {
        match self.clock.lock() {
            Ok(mut c) => change(&mut c),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
        self.changed.notify_one();
    }

    /// When this leg started.
    pub(super) fn started(&self) -> Instant {
        self.clock().started
    }

    /// When this leg's invocation must have it ended, if it is limited.
    pub(super) fn ends_by(&self) -> Option<Instant> {
        self.clock().ends_by
    }

    /// Whether the guest is parked (no budget runs).
    pub(super) fn parked(&self) -> bool {
        self.clock().parked
    }

    /// The guest parks: the leg is over.
    pub(super) fn park(&self) {
        self.set(|c| c.parked = true);
    }

    /// The guest goes on in a new leg, ending by `ends_by`.
    pub(super) fn resume(&self, ends_by: Option<Instant>) {
        self.host_time.reset();
        self.set(|c| {
            *c = LegClock {
                started: Instant::now(),
                ends_by,
                parked: false,
            }
        });
    }

    /// Resolves once the guest parked or a new leg started since the last
    /// time it resolved.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
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

    fn checkpoint(&self) -> Option<crate::model::RunRecord> {
        self.inner.checkpoint()
    }

    async fn finish(&mut self, outcome: &ActivationEnd) -> Result<(), DriverError> {
        self.inner.finish(outcome).await
    }
}
