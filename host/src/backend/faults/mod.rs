//! Fault injection at the storage seams, for chaos testing a deployment.
//!
//! Off unless a `WEFT_FAULT_*` rate is set. Then [`FaultyQueue`] and
//! [`FaultyStore`] wrap the real queue and state store and misbehave the
//! way DynamoDB, SQS or a busy disk do:
//!
//! - **throttle**: the call fails at once and changes nothing (a
//!   `ProvisionedThroughputExceeded`, `SQLITE_BUSY`);
//! - **timeout**: the call hangs, then fails; a write may or may not have
//!   been applied (a request that timed out on the wire);
//! - **ambiguous**: a write is applied and then reported failed; a
//!   conditional write is, half of the time, reported as a lost condition
//!   instead (what the SDK's retry of a conditional DynamoDB write whose
//!   first try succeeded answers);
//! - **duplicate** and **delay** (queue sends only): a message is sent
//!   twice, or held back by a random extra delay, as an at-least-once queue
//!   may do.
//!
//! Every injected fault is logged with `fault=<kind>` and counted in
//! [`FaultCounts`], so a test can tell how many it survived.

mod queue;
mod store;

pub use queue::FaultyQueue;
pub use store::FaultyStore;

use crate::config::env_num;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What to inject, as probabilities per call (per sent message for
/// `duplicate_rate` and `delay_rate`).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    pub duplicate_rate: f64,
    pub delay_rate: f64,
    pub max_extra_delay: Duration,
    /// Store and queue calls that fail without effect.
    pub throttle_rate: f64,
    /// Store and queue calls that hang for `timeout`, then fail; a write
    /// among them is applied half of the time.
    pub timeout_rate: f64,
    pub timeout: Duration,
    /// Store writes and queue sends that are applied, then reported failed.
    pub ambiguous_rate: f64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            duplicate_rate: 0.0,
            delay_rate: 0.0,
            max_extra_delay: Duration::from_secs(2),
            throttle_rate: 0.0,
            timeout_rate: 0.0,
            timeout: Duration::from_millis(500),
            ambiguous_rate: 0.0,
        }
    }
}

impl FaultPlan {
    /// The plan from `WEFT_FAULT_*`, or `None` when no fault is enabled.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let rate = |name: &str| -> anyhow::Result<f64> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        anyhow::anyhow!("{name}={v:?} is not a probability between 0 and 1")
                    }),
                Err(_) => Ok(0.0),
            }
        };
        let defaults = Self::default();
        let plan = Self {
            duplicate_rate: rate("WEFT_FAULT_DUPLICATE_RATE")?,
            delay_rate: rate("WEFT_FAULT_DELAY_RATE")?,
            max_extra_delay: Duration::from_millis(env_num(
                "WEFT_FAULT_DELAY_MAX_MS",
                defaults.max_extra_delay.as_millis() as u64,
            )?),
            throttle_rate: rate("WEFT_FAULT_THROTTLE_RATE")?,
            timeout_rate: rate("WEFT_FAULT_TIMEOUT_RATE")?,
            timeout: Duration::from_millis(env_num(
                "WEFT_FAULT_TIMEOUT_MS",
                defaults.timeout.as_millis() as u64,
            )?),
            ambiguous_rate: rate("WEFT_FAULT_AMBIGUOUS_RATE")?,
        };
        Ok((plan.queue_faults() || plan.call_faults()).then_some(plan))
    }

    /// Every message duplicated, nothing else.
    pub fn always_duplicate() -> Self {
        Self {
            duplicate_rate: 1.0,
            ..Self::default()
        }
    }

    /// Whether sent messages are duplicated or delayed.
    fn queue_faults(&self) -> bool {
        self.duplicate_rate > 0.0 || self.delay_rate > 0.0
    }

    /// Whether calls fail (throttled, timed out, ambiguous).
    pub fn call_faults(&self) -> bool {
        self.throttle_rate > 0.0 || self.timeout_rate > 0.0 || self.ambiguous_rate > 0.0
    }

    /// The fault, if any, that befalls one call (`writes`: whether the call
    /// changes anything, so an ambiguous outcome is possible).
    fn roll(&self, writes: bool) -> Option<CallFault> {
        let dice = rand::random::<f64>();
        let ambiguous = if writes { self.ambiguous_rate } else { 0.0 };
        if dice < self.throttle_rate {
            Some(CallFault::Throttle)
        } else if dice < self.throttle_rate + self.timeout_rate {
            Some(CallFault::Timeout {
                applied: writes && rand::random::<bool>(),
            })
        } else if dice < self.throttle_rate + self.timeout_rate + ambiguous {
            Some(CallFault::Ambiguous)
        } else {
            None
        }
    }
}

/// How one call goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallFault {
    Throttle,
    Timeout { applied: bool },
    Ambiguous,
}

impl CallFault {
    fn kind(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Timeout { .. } => "timeout",
            Self::Ambiguous => "ambiguous",
        }
    }

    /// Whether the call takes effect before it is reported failed.
    fn applies(self) -> bool {
        match self {
            Self::Throttle => false,
            Self::Timeout { applied } => applied,
            Self::Ambiguous => true,
        }
    }

    /// What the caller is told.
    fn message(self, seam: &str, call: &str) -> String {
        let what = match self {
            Self::Throttle => "throttled",
            Self::Timeout { .. } => "timed out",
            Self::Ambiguous => "failed after it was applied",
        };
        format!("injected fault: {seam} call {call} {what}")
    }
}

/// Faults injected so far, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub throttle: AtomicU64,
    pub timeout: AtomicU64,
    pub ambiguous: AtomicU64,
    pub duplicate: AtomicU64,
    pub delay: AtomicU64,
}

impl FaultCounts {
    fn record(&self, fault: CallFault, seam: &'static str, call: &'static str) {
        let counter = match fault {
            CallFault::Throttle => &self.throttle,
            CallFault::Timeout { .. } => &self.timeout,
            CallFault::Ambiguous => &self.ambiguous,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            fault = fault.kind(),
            seam,
            call,
            applied = fault.applies(),
            "injected fault"
        );
    }
}

/// Runs `call` (a store or queue call, not yet started) under `plan`:
/// returns its result, or `fail(fault, message)` after applying it or not
/// as the rolled fault says.
async fn faulted<T, E>(
    plan: &FaultPlan,
    counts: &FaultCounts,
    seam: &'static str,
    name: &'static str,
    writes: bool,
    call: impl Future<Output = Result<T, E>>,
    fail: impl FnOnce(CallFault, String) -> E,
) -> Result<T, E> {
    let Some(fault) = plan.roll(writes) else {
        return call.await;
    };
    counts.record(fault, seam, name);
    if let CallFault::Timeout { .. } = fault {
        tokio::time::sleep(plan.timeout).await;
    }
    if fault.applies() {
        // The caller is told it failed whatever the call itself answered.
        let _ = call.await;
    }
    Err(fail(fault, fault.message(seam, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_rolls_no_fault() {
        let plan = FaultPlan::default();
        assert!((0..1000).all(|_| plan.roll(true).is_none()));
    }

    #[test]
    fn reads_are_never_ambiguous() {
        let plan = FaultPlan {
            ambiguous_rate: 1.0,
            ..FaultPlan::default()
        };
        assert!((0..1000).all(|_| plan.roll(false).is_none()));
        assert!((0..1000).all(|_| plan.roll(true) == Some(CallFault::Ambiguous)));
    }

    #[test]
    fn rates_split_the_calls() {
        let plan = FaultPlan {
            throttle_rate: 0.2,
            timeout_rate: 0.2,
            ambiguous_rate: 0.2,
            ..FaultPlan::default()
        };
        let mut seen = [0u32; 4];
        for _ in 0..10_000 {
            let i = match plan.roll(true) {
                Some(CallFault::Throttle) => 0,
                Some(CallFault::Timeout { .. }) => 1,
                Some(CallFault::Ambiguous) => 2,
                None => 3,
            };
            seen[i] += 1;
        }
        for (i, n) in seen.iter().enumerate() {
            let want = if i == 3 { 4_000 } else { 2_000 };
            assert!(n.abs_diff(want) < 300, "{seen:?}");
        }
    }

    /// Runs a write under `plan`: whether it took effect, and its result.
    async fn one_write(plan: FaultPlan) -> (bool, Result<(), String>, FaultCounts) {
        let counts = FaultCounts::default();
        let applied = std::sync::atomic::AtomicBool::new(false);
        let call = async {
            applied.store(true, Ordering::SeqCst);
            Ok(())
        };
        let result = faulted(&plan, &counts, "store", "commit", true, call, |_, m| m).await;
        (applied.load(Ordering::SeqCst), result, counts)
    }

    #[tokio::test]
    async fn an_ambiguous_call_is_applied_and_reported_failed() {
        let (applied, result, counts) = one_write(FaultPlan {
            ambiguous_rate: 1.0,
            ..FaultPlan::default()
        })
        .await;
        assert!(applied);
        assert!(result.unwrap_err().contains("after it was applied"));
        assert_eq!(counts.ambiguous.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_throttled_call_changes_nothing() {
        let (applied, result, counts) = one_write(FaultPlan {
            throttle_rate: 1.0,
            ..FaultPlan::default()
        })
        .await;
        assert!(!applied);
        assert!(result.unwrap_err().contains("throttled"));
        assert_eq!(counts.throttle.load(Ordering::Relaxed), 1);
    }
}
