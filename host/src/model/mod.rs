//! The domain vocabulary: runs, steps, outcomes, modules and work messages.
//!
//! Plain data with no I/O. Every other module depends on this one and it
//! depends on none of them, so the words mean the same thing in the replay
//! core, the stores and the HTTP API.

mod callback;
mod cron;
mod error;
mod event;
pub mod json;
mod message;
mod module;
mod run;
mod schedule;
mod step;
mod time;

pub use callback::{CallbackRecord, CallbackState, TOKEN_PREFIX, token_hash};
pub use cron::{Cron, CronError};
pub use error::{ErrorCode, ErrorInfo};
pub use event::{
    EventRecord, EventSent, MAX_EVENT_ID, MAX_EVENT_NAME, valid_event_id, valid_event_name,
};
pub use message::{Envelope, WorkMessage};
pub use module::{Digest, ModuleKind, ModuleVersion};
pub use run::{Lease, LogLine, ParentLink, RunHead, RunId, RunRecord, RunStatus, StepNames};
pub use schedule::{Overlap, Schedule, valid_schedule_name};
pub use step::{
    AttemptRecord, CallbackStep, EventWait, RetryPolicy, StepCall, StepKind, StepOptions,
    StepOutcome, StepRecord, StepStatus,
};
pub use time::{Clock, ManualClock, Millis, SystemClock, now_millis};
