//! A step driver for journals that already hold everything a workflow asks
//! for: replaying one must decide nothing new. It keeps how the activation
//! ended, and panics at any step the journal lacks. The replay tests and
//! the engine benchmark activate workflows on such journals directly.

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use weft::model::{LogLine, Millis, StepCall, StepOutcome, StepRecord};
use weft::replay::{ActivationEnd, DriverError, Probe, Resolution, StepDriver};

/// See the module doc. `ended` holds the last activation's end.
#[derive(Clone, Default)]
pub struct RecordedOnly {
    pub ended: Arc<Mutex<Option<ActivationEnd>>>,
}

impl RecordedOnly {
    /// How the last activation through this driver ended.
    pub fn ended(&self) -> Option<ActivationEnd> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }
}

#[async_trait]
impl StepDriver for RecordedOnly {
    async fn schedule(&mut self, _: u32, call: &StepCall) -> Result<Resolution, DriverError> {
        panic!("the journal is missing step {}", call.name)
    }
    async fn in_flight(&mut self, step: &StepRecord) -> Result<Resolution, DriverError> {
        panic!("the journal has an unfinished step {}", step.name)
    }
    async fn inline_attempt(
        &mut self,
        _: u32,
        call: &StepCall,
        _: u32,
        _: Option<&StepRecord>,
        _: StepOutcome,
    ) -> Result<Resolution, DriverError> {
        panic!("the journal is missing inline step {}", call.name)
    }
    async fn start(&mut self, _: u32, call: &StepCall) -> Result<StepRecord, DriverError> {
        panic!("the journal is missing started step {}", call.name)
    }
    async fn probe(&mut self, step: &StepRecord) -> Result<Probe, DriverError> {
        panic!("the journal has an unfinished member {}", step.name)
    }
    async fn join(&mut self, _: u32, call: &StepCall, _: &str) -> Result<Resolution, DriverError> {
        panic!("the journal is missing join step {}", call.name)
    }
    async fn await_members(
        &mut self,
        members: &[StepRecord],
        _: Option<Millis>,
    ) -> Result<Resolution, DriverError> {
        panic!("{} members have no outcome in the journal", members.len())
    }
    fn log(&mut self, _: LogLine) {}
    async fn finish(&mut self, outcome: &ActivationEnd) -> Result<(), DriverError> {
        if let Ok(mut ended) = self.ended.lock() {
            *ended = Some(outcome.clone());
        }
        Ok(())
    }
}
