//! Parking: a suspended guest kept in memory so that its run's next
//! activation in the same process continues it instead of replaying it.
//!
//! Replaying from the top makes every activation cost the whole journal:
//! a run of N queued steps, suspended at each, costs O(N²). When the host
//! offers a [`ParkingSpot`], a step call that ends the activation suspended
//! does not trap: the guest waits inside that host call. If the run is
//! resumed in this process, with its run exactly as this guest left it
//! (the driver's [`StepDriver::checkpoint`]), the spot hands the
//! guest a new driver and the journal entries that changed; the call then
//! starts again from the journal position where it began, as a replay
//! would reach it, and the guest goes on. Otherwise (another process moved
//! the run, the spot evicted the guest, the process died) the run is
//! replayed from its journal as before.
//!
//! Why both paths give the same journal: a replay re-executes the same
//! deterministic code on the same journal up to the same host call, so the
//! guest it produces there is the parked one. What could differ is what
//! the parked guest remembers of the journal, and the wake refreshes every
//! entry that can still change (those without an outcome: an outcome, once
//! written, is final) and adds those recorded past what it holds.

use super::ActivationReport;
use super::driver::StepDriver;
use crate::model::{RunRecord, StepRecord};
use async_trait::async_trait;
use std::time::Instant;

/// What a parked guest remembers of its journal: what the wake must read
/// again to bring it up to date.
#[derive(Clone, Debug, Default)]
pub struct ParkedJournal {
    /// How many entries the guest holds.
    pub known: usize,
    /// The entries it holds without an outcome, by name.
    pub unfinished: Vec<String>,
}

/// A parked guest, as the spot sees it.
#[derive(Debug)]
pub struct ParkedGuest {
    /// What the leg that just ended did.
    pub report: ActivationReport,
    /// The run as the guest's last write left it
    /// ([`StepDriver::checkpoint`]).
    pub run: RunRecord,
    pub journal: ParkedJournal,
    /// The guest's linear memory, what keeping it costs.
    pub memory_bytes: usize,
}

/// What a woken guest needs for its next leg.
pub struct NextLeg {
    /// The driver of the run's new activation.
    pub driver: Box<dyn StepDriver>,
    /// The journal entries the guest held without an outcome, as they now
    /// stand, and every entry recorded past the ones it held, in any order.
    pub steps: Vec<StepRecord>,
    /// When the new leg's invocation must have it ended.
    pub ends_by: Option<Instant>,
}

/// Where a suspended guest waits for its run's next activation.
#[async_trait]
pub trait ParkingSpot: Send + Sync {
    /// The leg that just ended with the guest suspended: report it to
    /// whoever waits for the activation, then wait until the run resumes
    /// here (`Some`) or the guest is let go (`None`: evicted, refused, or
    /// the run moved on elsewhere; it ends without writing anything).
    async fn park(&self, guest: ParkedGuest) -> Option<NextLeg>;
}
