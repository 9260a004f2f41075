//! The guest's CPU budget (fuel), charged for new work only.
//!
//! An activation replays the journal from the top before it reaches new
//! code. Charging that replay to `WEFT_FUEL_PER_ACTIVATION` would fail a
//! healthy run once its journal grew long enough (JavaScript and Python
//! first, their interpreters burn the most fuel per step). So the budget
//! covers what the guest does past the journal's end:
//!
//! - while replaying, the guest has the budget once per journal entry plus
//!   once more. Each stretch of code between two recorded steps ran live in
//!   some earlier activation within one budget, and replay re-runs exactly
//!   that code on the same inputs, so this bound never fails a run that was
//!   healthy when it recorded its steps, yet still stops a guest that
//!   diverges into a loop while replaying;
//! - the first time a host call returns with the journal consumed, the
//!   remaining fuel is reset to one budget for the new work;
//! - a parked guest that goes on in a new leg (see `park.rs`) is reset to
//!   one budget when the host call it waited in returns.

use super::state::WorkflowState;
use wasmtime::{CallHook, Store};

/// Fuel bookkeeping of one activation, kept in the store's data.
#[derive(Debug, Default)]
pub(crate) struct FuelBudget {
    /// One activation's budget for new work.
    per_activation: u64,
    /// What the store started with.
    initial: u64,
    /// Fuel burnt while replaying, once the guest has passed the journal.
    replay_used: Option<u64>,
    /// Fuel left when the guest last called the host: what a host call
    /// that reports the leg's usage reads (it cannot see the store).
    left_at_call: u64,
    /// A new leg starts when the current host call returns.
    refill: bool,
}

impl FuelBudget {
    /// The budget of an activation replaying `journal_len` recorded steps.
    pub(crate) fn new(per_activation: u64, journal_len: usize) -> Self {
        let stretches = u64::try_from(journal_len)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let initial = if journal_len == 0 {
            per_activation
        } else {
            per_activation.saturating_mul(stretches)
        };
        Self {
            per_activation,
            initial,
            replay_used: (journal_len == 0).then_some(0),
            left_at_call: initial,
            refill: false,
        }
    }

    /// Fuel used so far in this leg, as of the guest's last host call.
    pub(crate) fn used_at_call(&self) -> u64 {
        self.used(self.left_at_call)
    }

    /// Starts a new leg when the host call under way returns: one budget
    /// for the guest's own work, none of it used yet.
    pub(crate) fn new_leg(&mut self) {
        self.refill = true;
        self.initial = self.per_activation;
        self.replay_used = Some(0);
        self.left_at_call = self.per_activation;
    }

    /// Fuel used so far, given what is left in the store.
    pub(crate) fn used(&self, left: u64) -> u64 {
        match self.replay_used {
            None => self.initial.saturating_sub(left),
            Some(replayed) => replayed.saturating_add(self.per_activation.saturating_sub(left)),
        }
    }
}

/// Fills the store with the replay budget and arranges the reset to one
/// activation budget when the guest passes the journal's end. Returns
/// whether fuel metering is on (it is off only if the engine lacks it).
pub(crate) fn install(store: &mut Store<WorkflowState>) -> bool {
    let initial = store.data().fuel.initial;
    if store.set_fuel(initial).is_err() {
        return false;
    }
    store.call_hook(|mut store, hook| {
        match hook {
            CallHook::CallingHost => {
                let left = store.get_fuel()?;
                store.data_mut().fuel.left_at_call = left;
                return Ok(());
            }
            CallHook::ReturningFromHost => {}
            _ => return Ok(()),
        }
        if std::mem::take(&mut store.data_mut().fuel.refill) {
            let fresh = store.data().fuel.per_activation;
            return store.set_fuel(fresh);
        }
        let state = store.data();
        if state.fuel.replay_used.is_some() || state.journal.replaying() {
            return Ok(());
        }
        let left = store.get_fuel()?;
        let fuel = &mut store.data_mut().fuel;
        fuel.replay_used = Some(fuel.initial.saturating_sub(left));
        let fresh = fuel.per_activation;
        store.set_fuel(fresh)
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_budget_scales_with_the_journal_and_usage_adds_up() {
        let fresh = FuelBudget::new(100, 0);
        assert_eq!(fresh.initial, 100);
        assert_eq!(fresh.used(40), 60);

        let mut replaying = FuelBudget::new(100, 9);
        assert_eq!(replaying.initial, 1_000);
        assert_eq!(replaying.used(700), 300);
        // Past the journal: 300 burnt replaying, then a fresh 100.
        replaying.replay_used = Some(300);
        assert_eq!(replaying.used(100), 300);
        assert_eq!(replaying.used(25), 375);
    }
}
