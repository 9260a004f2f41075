//! The replay core: one activation of a workflow against its journal.
//!
//! A workflow is deterministic code whose every effect is a step. An
//! activation instantiates the guest, calls `run`, and answers each step
//! call from the journal; the first step without an outcome goes to the
//! [`StepDriver`], which either resolves it on the spot (an inline step, an
//! RPC executed in-process, a due timer) or suspends the guest with a trap.
//! A replay that asks for something other than what the journal recorded
//! fails the run with `non_deterministic`.
//!
//! Nothing here knows which backend persists the journal.

// Request and guest input flows through here: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod activation;
mod budget;
mod compat;
mod driver;
mod fanout;
mod fuel;
mod host;
mod journal;
pub mod park;
mod runtime;
mod state;

pub use activation::{
    ActivationEnd, ActivationInput, ActivationReport, activate, instantiate_only,
};
pub use driver::{DriverError, Probe, Resolution, StepDriver};
pub use journal::{Divergence, Journal, Position};
pub use park::{NextLeg, ParkedGuest, ParkedJournal, ParkingSpot};
pub use runtime::WorkflowWorld;
pub use state::WorkflowState;
