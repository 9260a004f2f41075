//! The parking lot: suspended guests this process keeps, one per run, so
//! the run's next activation here continues the guest instead of replaying
//! its journal (see [`crate::replay::park`]).
//!
//! An activation with parking runs in a task of its own, which outlives
//! the message that started it. Each leg (one per activation of the run)
//! reports to whoever handles the message that resumed the run, through
//! a one-shot channel handed over at the wake.
//!
//! A parked guest goes on only if the run is exactly as it left it: its
//! driver's last write gave the run version `v`, and the activation that
//! wants it took the lease at `v + 1` (taking the lease is one write).
//! That activation then needs nothing more of the store than the lease's
//! [`RunHead`]: the rest of the run is the guest's record.
//! Anything else written to the run in between (another process's
//! activation, a released lease) makes the guest stale: it is let go and
//! the run replays from its journal. Letting a guest go is always safe,
//! at any moment: the leg that parked it had written everything.
//!
//! Memory is bounded: at most [`ParkingLimits::max_runs`] guests and
//! [`ParkingLimits::max_bytes`] of their linear memory, oldest let go
//! first, and none kept longer than [`ParkingLimits::max_idle`] (checked
//! whenever a guest parks or is claimed).

use crate::model::{Millis, RunHead, RunId, RunRecord};
use crate::replay::{
    ActivationReport, DriverError, NextLeg, ParkedGuest, ParkedJournal, ParkingSpot,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What the lot may hold. `WEFT_PARK_MAX_RUNS`, `WEFT_PARK_MAX_MB`,
/// `WEFT_PARK_IDLE_SECS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParkingLimits {
    /// Most guests parked at once; 0 turns parking off.
    pub max_runs: usize,
    /// Most linear memory of parked guests, in total.
    pub max_bytes: u64,
    /// Longest a guest stays parked.
    pub max_idle: Duration,
}

impl Default for ParkingLimits {
    fn default() -> Self {
        Self {
            max_runs: 1_000,
            max_bytes: 512 << 20,
            max_idle: Duration::from_secs(900),
        }
    }
}

/// How long a resume waits for the activation that just let the run go to
/// park its guest (it is sending a message, or writing its logs).
const PARKING_WAIT: Duration = Duration::from_secs(2);
const PARKING_POLL: Duration = Duration::from_millis(2);

/// What the leg of an activation reports to the message handler waiting for it.
pub(crate) type LegResult = Result<ActivationReport, DriverError>;

/// Wakes a parked guest for the next leg.
pub(crate) struct Wake {
    pub next: NextLeg,
    /// Where the new leg reports.
    pub report: oneshot::Sender<LegResult>,
}

/// A guest in the lot.
pub(crate) struct Parked {
    generation: u64,
    /// The run as the guest's last write left it.
    run: Box<RunRecord>,
    pub(crate) journal: ParkedJournal,
    bytes: u64,
    since: Instant,
    wake: oneshot::Sender<Wake>,
}

impl Parked {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The guest's run as the lease just taken (described by `head`, at
    /// `now`) left it: the guest's record with the lease's changes.
    pub(crate) fn leased_run(&self, head: &RunHead, now: Millis) -> RunRecord {
        let mut run = (*self.run).clone();
        run.version = head.version;
        run.lease = head.lease.clone();
        run.updated_at = now;
        run.status = head.status;
        run.wake_at = head.wake_at;
        run.deadline = head.deadline;
        run.awaiting = head.awaiting.clone();
        run
    }

    /// Wakes the guest; gives the wake back if the guest is gone.
    pub(crate) fn wake(self, wake: Wake) -> Result<(), Wake> {
        self.wake.send(wake)
    }
}

enum Slot {
    /// An activation of the run is under way in this process (or between
    /// letting the run go and parking).
    Active {
        generation: u64,
    },
    Parked(Parked),
}

/// The suspended guests of this process, by run.
pub(crate) struct ParkingLot {
    limits: ParkingLimits,
    slots: Mutex<HashMap<RunId, Slot>>,
    generations: AtomicU64,
    /// Legs that went on in a parked guest, for stats and tests.
    pub(crate) woken: AtomicU64,
}

impl ParkingLot {
    pub(crate) fn new(limits: ParkingLimits) -> Self {
        Self {
            limits,
            slots: Mutex::default(),
            generations: AtomicU64::new(0),
            woken: AtomicU64::new(0),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new activation of `run`, replacing (and letting go)
    /// whatever the lot held for it. Returns its generation.
    pub(crate) fn begin(&self, run: &RunId) -> u64 {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.slots()
            .insert(run.clone(), Slot::Active { generation });
        generation
    }

    /// Whether an activation of `run` is under way or parked here.
    pub(crate) fn holds(&self, run: &RunId) -> bool {
        self.slots().contains_key(run)
    }

    /// The activation of generation `generation` ended for good.
    pub(crate) fn end(&self, run: &RunId, generation: u64) {
        let mut slots = self.slots();
        if slots.get(run).is_some_and(|s| s.generation() == generation) {
            slots.remove(run);
        }
    }

    /// Lets go of the guest parked for `run`, which ended (a cancel, a
    /// failure decided outside its activation): it will never be woken.
    pub(crate) fn release(&self, run: &RunId) {
        let mut slots = self.slots();
        if matches!(slots.get(run), Some(Slot::Parked(_))) {
            slots.remove(run);
        }
    }

    /// Parks `parked` for `run` if its activation is still the run's here,
    /// then lets go of guests over the limits. Returns whether it stayed.
    fn park(&self, run: &RunId, parked: Parked) -> bool {
        let generation = parked.generation;
        let mut slots = self.slots();
        if !slots
            .get(run)
            .is_some_and(|s| matches!(s, Slot::Active { generation: g } if *g == generation))
        {
            return false;
        }
        slots.insert(run.clone(), Slot::Parked(parked));
        self.evict(&mut slots);
        slots
            .get(run)
            .is_some_and(|s| matches!(s, Slot::Parked(p) if p.generation == generation))
    }

    /// Lets go of guests parked too long, then the oldest while over the
    /// count or memory limit.
    fn evict(&self, slots: &mut HashMap<RunId, Slot>) {
        let now = Instant::now();
        slots.retain(|_, s| !matches!(s, Slot::Parked(p) if now - p.since > self.limits.max_idle));
        loop {
            let parked = slots.values().filter_map(|s| match s {
                Slot::Parked(p) => Some(p),
                Slot::Active { .. } => None,
            });
            let (count, bytes) = parked.fold((0usize, 0u64), |(c, b), p| (c + 1, b + p.bytes));
            if count <= self.limits.max_runs && bytes <= self.limits.max_bytes {
                return;
            }
            let oldest = slots
                .iter()
                .filter_map(|(id, s)| match s {
                    Slot::Parked(p) => Some((p.since, id.clone())),
                    Slot::Active { .. } => None,
                })
                .min();
            match oldest {
                Some((_, id)) => {
                    slots.remove(&id);
                }
                None => return,
            }
        }
    }

    /// The guest parked for run `id`, which this process just leased at
    /// `version`, if it left the run exactly as it now stands (its last
    /// write gave the version before); the run's slot stays the guest's
    /// activation. A stale guest is let go. Waits a moment for an
    /// activation that let the run go but has not parked yet.
    pub(crate) async fn claim(&self, id: &RunId, version: u64) -> Option<Parked> {
        let deadline = Instant::now() + PARKING_WAIT;
        loop {
            {
                let mut slots = self.slots();
                self.evict(&mut slots);
                match slots.remove(id) {
                    None => return None,
                    Some(Slot::Parked(p)) if p.run.version.checked_add(1) == Some(version) => {
                        let generation = p.generation;
                        slots.insert(id.clone(), Slot::Active { generation });
                        return Some(p);
                    }
                    // Stale: dropping it lets the guest go.
                    Some(Slot::Parked(_)) => return None,
                    Some(active @ Slot::Active { .. }) => {
                        if Instant::now() >= deadline {
                            // Its guest, if it ever parks, finds the slot
                            // taken by the replay that follows and ends.
                            return None;
                        }
                        slots.insert(id.clone(), active);
                    }
                }
            }
            tokio::time::sleep(PARKING_POLL).await;
        }
    }

    /// How many guests are parked, and their memory.
    pub(crate) fn usage(&self) -> (usize, u64) {
        self.slots()
            .values()
            .filter_map(|s| match s {
                Slot::Parked(p) => Some(p.bytes),
                Slot::Active { .. } => None,
            })
            .fold((0, 0), |(c, b), bytes| (c + 1, b + bytes))
    }
}

impl Slot {
    fn generation(&self) -> u64 {
        match self {
            Slot::Active { generation } => *generation,
            Slot::Parked(p) => p.generation,
        }
    }
}

/// The parking spot of one activation: parks its guest in the lot and
/// hands each leg's report to the handler waiting for it.
pub(crate) struct Spot {
    lot: Arc<ParkingLot>,
    run: RunId,
    generation: u64,
    /// Where the current leg reports.
    report: Mutex<Option<oneshot::Sender<LegResult>>>,
    /// What a parked guest costs besides its linear memory (its stack).
    overhead: u64,
}

impl Spot {
    pub(crate) fn new(
        lot: Arc<ParkingLot>,
        run: RunId,
        generation: u64,
        report: oneshot::Sender<LegResult>,
        overhead: u64,
    ) -> Self {
        Self {
            lot,
            run,
            generation,
            report: Mutex::new(Some(report)),
            overhead,
        }
    }

    fn reporter(&self) -> std::sync::MutexGuard<'_, Option<oneshot::Sender<LegResult>>> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The activation ended for good: report its last leg, free its slot.
    pub(crate) fn ended(&self, result: LegResult) {
        self.lot.end(&self.run, self.generation);
        if let Some(report) = self.reporter().take() {
            let _ = report.send(result);
        }
    }
}

#[async_trait]
impl ParkingSpot for Spot {
    async fn park(&self, guest: ParkedGuest) -> Option<NextLeg> {
        let (wake, woken) = oneshot::channel();
        let parked = Parked {
            generation: self.generation,
            run: Box::new(guest.run),
            journal: guest.journal,
            bytes: guest.memory_bytes as u64 + self.overhead,
            since: Instant::now(),
            wake,
        };
        // Parked before the report goes out: the handler that gets it may
        // ack the message at once, and the next resume must find the guest.
        let stays = self.lot.max_runs() > 0 && self.lot.park(&self.run, parked);
        if let Some(report) = self.reporter().take() {
            let _ = report.send(Ok(guest.report));
        }
        if !stays {
            return None;
        }
        let wake = woken.await.ok()?;
        *self.reporter() = Some(wake.report);
        self.lot.woken.fetch_add(1, Ordering::Relaxed);
        Some(wake.next)
    }
}

impl ParkingLot {
    fn max_runs(&self) -> usize {
        self.limits.max_runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Digest;

    fn run(version: u64) -> RunRecord {
        RunRecord {
            id: RunId::generate(),
            workflow: "w".into(),
            module_digest: Digest::of(b"w"),
            status: crate::model::RunStatus::Running,
            input: "null".into(),
            output: None,
            error: None,
            created_at: 0,
            updated_at: 0,
            version,
            lease: None,
            step_names: Default::default(),
            wake_at: None,
            deadline: None,
            awaiting: Vec::new(),
            parent: None,
            expires_at: None,
        }
    }

    /// Parks a guest of `bytes` for a new run at version 3 in `lot`;
    /// returns the run and what the guest would be woken through.
    fn park(lot: &ParkingLot, bytes: u64) -> (RunRecord, oneshot::Receiver<Wake>) {
        let run = run(3);
        let generation = lot.begin(&run.id);
        let (wake, woken) = oneshot::channel();
        let parked = Parked {
            generation,
            run: Box::new(run.clone()),
            journal: ParkedJournal::default(),
            bytes,
            since: Instant::now(),
            wake,
        };
        lot.park(&run.id, parked);
        (run, woken)
    }

    fn let_go(woken: &mut oneshot::Receiver<Wake>) -> bool {
        matches!(woken.try_recv(), Err(oneshot::error::TryRecvError::Closed))
    }

    #[test]
    fn the_oldest_guests_go_first_over_the_count_or_the_memory() {
        let lot = ParkingLot::new(ParkingLimits {
            max_runs: 2,
            max_bytes: 10 << 20,
            max_idle: Duration::from_secs(60),
        });
        let (_, mut first) = park(&lot, 1 << 20);
        let (_, mut second) = park(&lot, 1 << 20);
        assert!(!let_go(&mut first));
        let (_, mut third) = park(&lot, 1 << 20);
        assert!(let_go(&mut first), "over the count, the oldest goes");
        assert!(!let_go(&mut second) && !let_go(&mut third));
        assert_eq!(lot.usage(), (2, 2 << 20));

        let (_, mut big) = park(&lot, 9 << 20);
        assert!(let_go(&mut second), "over the memory, the oldest goes");
        assert!(!let_go(&mut third) && !let_go(&mut big));
        assert_eq!(lot.usage(), (2, 10 << 20));
        let (_, mut bigger) = park(&lot, 11 << 20);
        assert!(let_go(&mut third) && let_go(&mut big));
        assert!(let_go(&mut bigger), "a guest over the limit alone goes too");
        assert_eq!(lot.usage(), (0, 0));
    }

    #[test]
    fn an_idle_guest_goes_at_the_next_park() {
        let lot = ParkingLot::new(ParkingLimits {
            max_runs: 10,
            max_bytes: 10 << 20,
            max_idle: Duration::ZERO,
        });
        let (_, mut idle) = park(&lot, 1);
        std::thread::sleep(Duration::from_millis(2));
        let (_, _next) = park(&lot, 1);
        assert!(let_go(&mut idle));
    }

    #[tokio::test]
    async fn only_the_version_the_guest_left_wakes_it() {
        let lot = ParkingLot::new(ParkingLimits::default());
        let (run, mut woken) = park(&lot, 1);
        // Another process moved the run: the lease found version 6, not 4.
        assert!(lot.claim(&run.id, 6).await.is_none());
        assert!(let_go(&mut woken), "a stale guest is let go");

        let (run, mut woken) = park(&lot, 1);
        let parked = lot.claim(&run.id, 4).await.expect("the guest");
        assert!(!let_go(&mut woken));
        assert!(lot.holds(&run.id), "its activation goes on");
        lot.end(&run.id, parked.generation());
        assert!(!lot.holds(&run.id));
    }
}
