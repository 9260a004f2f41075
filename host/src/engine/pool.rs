//! Instance slots: wasmtime's pooling allocator, sized for every kind of
//! component Weft runs.
//!
//! Every activation and every RPC attempt instantiates a component in a
//! fresh store. With wasmtime's default (on-demand) allocator that costs a
//! `mmap` and `munmap` of the linear memory's image and of the async
//! stack each time: about 34 µs on the development machine, most of it in
//! the kernel. The pooling allocator reserves slots once and reuses them,
//! resetting a slot's memory to its copy-on-write image on reuse.
//!
//! One engine serves every module in the process (compiled code is tied to
//! its engine), so the slots are sized for the largest kind Weft runs, not
//! for the common small one: the JavaScript and Python components are
//! 12–18 MB with up to about twenty core instances, tables of thousands of
//! entries and 10–15 MB initial memories, where a Rust or C one has a few
//! core instances and a 1 MB memory. Slots cost address space, not memory:
//! a memory slot reserves 4 GiB of addresses (so no bounds checks are
//! compiled in), and pages are only committed when a guest touches them.
//!
//! A process may hold at most [`PoolSize::slots`] component instances at
//! once: the parked guests (at most `WEFT_PARK_MAX_RUNS`, 1 000 by default)
//! plus the activations and RPC attempts running. When every slot is taken
//! an instantiation waits for one to free ([`wait_for_slot`]) rather than
//! failing a run for a reason that is the host's.

use std::time::Duration;
use wasmtime::{InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig};

/// How many component instances the process may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSize {
    /// Component instances; `0` (the default) turns pooling off
    /// (wasmtime's on-demand allocator, a fresh mapping per instance).
    /// `WEFT_INSTANCE_SLOTS`.
    pub slots: u32,
}

impl Default for PoolSize {
    /// On demand for now: pooled, instantiation is 2.5x faster alone
    /// (13.3 µs against 33.7 µs), but under `make test`'s full load on two
    /// cores the AWS fan-out replayed at every step missed its deadline
    /// twice pooled and not on demand. Until that is understood, pooling is
    /// opted into with `WEFT_INSTANCE_SLOTS` (1 500 suits a worker).
    fn default() -> Self {
        Self { slots: 0 }
    }
}

/// Core instances one component may hold (componentize-py's have about
/// twenty: the interpreter, libc and its other shared objects, shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Core instances the pool keeps in all, per component slot on average: a
/// mix of Rust (four or five) and Python (about twenty) components.
const CORE_INSTANCES_PER_SLOT: u32 = 12;
/// Linear memories per component slot on average (the main module's, and
/// an adapter's or a shared object's).
const MEMORIES_PER_SLOT: u32 = 2;
/// Tables per component slot on average.
const TABLES_PER_SLOT: u32 = 8;
/// Entries of one table: a JavaScript component's function table has
/// about 7 700, a Python one's 5 700; this leaves room for larger programs.
const TABLE_ELEMENTS: usize = 64 * 1024;

impl PoolSize {
    /// `WEFT_INSTANCE_SLOTS`, or the default.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("WEFT_INSTANCE_SLOTS") {
            Err(_) => Ok(Self::default()),
            Ok(raw) => raw
                .trim()
                .parse()
                .map(|slots| Self { slots })
                .map_err(|_| format!("WEFT_INSTANCE_SLOTS={raw:?} is not a number of slots")),
        }
    }

    /// How many guests a parking lot may keep with these slots: parked
    /// guests hold their slots, so they may take at most half, and the
    /// rest stay free for the activations and RPC attempts that run.
    pub fn parking_room(self, wanted: usize) -> usize {
        match self.slots {
            0 => wanted,
            slots => wanted.min(slots as usize / 2),
        }
    }

    /// The allocation strategy for this size.
    pub fn strategy(self) -> InstanceAllocationStrategy {
        if self.slots == 0 {
            return InstanceAllocationStrategy::OnDemand;
        }
        let slots = self.slots;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_memories(slots.saturating_mul(MEMORIES_PER_SLOT))
            .total_tables(slots.saturating_mul(TABLES_PER_SLOT))
            .total_stacks(slots)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_tables_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_tables_per_module(4)
            .table_elements(TABLE_ELEMENTS)
            // Guests are held to their memory limit by the store's
            // limiter; a slot fits any limit a 32-bit memory can have.
            .max_memory_size(1 << 32)
            // A freed slot's touched pages are dropped (`madvise`), not
            // zeroed in place: measured, keeping 64 KB resident made
            // instantiation 15 µs and 1 MB 33 µs, against 13.3 µs.
            .linear_memory_keep_resident(0)
            .async_stack_keep_resident(64 << 10);
        InstanceAllocationStrategy::Pooling(pool)
    }
}

/// `$pre.instantiate_async(&mut $store)`, waiting while every slot is
/// taken (see [`wait_for_slot`]); the error once the wait is spent. A
/// macro because the pre-instantiated types are generated per world.
macro_rules! instantiate_when_free {
    ($pre:expr, $store:expr) => {{
        let mut tries = 1;
        loop {
            match $pre.instantiate_async(&mut $store).await {
                Err(e) if $crate::engine::pool::is_full(&e) => {
                    match $crate::engine::pool::wait_for_slot(tries) {
                        Some(pause) => {
                            tries += 1;
                            tokio::time::sleep(pause).await;
                        }
                        None => break Err(e),
                    }
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use instantiate_when_free;

/// Whether `err` is an instantiation refused because every slot is taken.
pub fn is_full(err: &wasmtime::Error) -> bool {
    err.chain().any(|c| c.is::<PoolConcurrencyLimitError>())
}

/// The longest an instantiation waits for a free slot before giving up.
pub const SLOT_PATIENCE: Duration = Duration::from_secs(30);

/// How long to wait before instantiation attempt `tries` (from 1) when
/// every slot was taken; `None` once [`SLOT_PATIENCE`] is spent.
pub fn wait_for_slot(tries: u32) -> Option<Duration> {
    let step = Duration::from_millis(5u64 << tries.min(7)).min(Duration::from_millis(500));
    let spent: Duration = (1..tries)
        .map(|t| Duration::from_millis(5u64 << t.min(7)).min(Duration::from_millis(500)))
        .sum();
    (spent + step <= SLOT_PATIENCE).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_for_a_slot_grows_then_stops() {
        assert_eq!(wait_for_slot(1), Some(Duration::from_millis(10)));
        assert_eq!(wait_for_slot(2), Some(Duration::from_millis(20)));
        assert_eq!(wait_for_slot(20), Some(Duration::from_millis(500)));
        let total: Duration = (1..).map_while(wait_for_slot).sum();
        assert!(
            total <= SLOT_PATIENCE && total > SLOT_PATIENCE / 2,
            "{total:?}"
        );
    }

    #[test]
    fn parked_guests_leave_half_the_slots_free() {
        assert_eq!(PoolSize { slots: 1_500 }.parking_room(1_000), 750);
        assert_eq!(PoolSize { slots: 1_500 }.parking_room(100), 100);
        assert_eq!(PoolSize { slots: 0 }.parking_room(1_000), 1_000);
    }

    #[test]
    fn zero_slots_is_the_on_demand_allocator() {
        assert!(matches!(
            PoolSize { slots: 0 }.strategy(),
            InstanceAllocationStrategy::OnDemand
        ));
    }
}
