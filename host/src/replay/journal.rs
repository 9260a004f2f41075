//! A run's journal during one activation: the recorded steps, a cursor, and
//! the determinism check.

use super::park::ParkedJournal;
use crate::model::{StepCall, StepKind, StepRecord};
use std::collections::HashMap;
use std::fmt;

/// Where a step call lands in the journal.
#[derive(Debug)]
pub enum Position {
    /// The journal has this step with its final outcome.
    Recorded(StepRecord),
    /// The journal has this step but it has no outcome yet.
    InFlight(StepRecord),
    /// Past the end of the journal: a step never reached before.
    New { seq: u32 },
}

/// A replay that does not match the journal: the workflow's code (or
/// something it read) changed between activations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub position: u32,
    pub recorded: String,
    pub replayed: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay diverged from the journal at step #{}:\n  journal: {}\n  replay:  {}",
            self.position, self.recorded, self.replayed
        )
    }
}

/// The recorded steps of a run, consumed in order by the replaying guest.
pub struct Journal {
    entries: Vec<StepRecord>,
    cursor: usize,
    /// Position of each step by name: started steps are awaited by name.
    names: HashMap<String, usize>,
}

impl Journal {
    /// `entries` must be in journal order (`seq` 0, 1, 2...).
    pub fn new(entries: Vec<StepRecord>) -> Self {
        let names = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Self {
            entries,
            cursor: 0,
            names,
        }
    }

    /// Whether the guest is still re-executing code it already ran: there
    /// are recorded steps ahead of it. Output written now is a repeat.
    pub fn replaying(&self) -> bool {
        self.cursor < self.entries.len()
    }

    /// How many journal entries the guest has passed.
    pub fn position(&self) -> u32 {
        self.cursor as u32
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Steps the replay has not reached, for the end-of-run check.
    pub fn unconsumed(&self) -> &[StepRecord] {
        self.entries.get(self.cursor..).unwrap_or_default()
    }

    /// Matches the guest's next step call against the journal.
    pub fn advance(&mut self, call: &StepCall) -> Result<Position, Divergence> {
        let Some(recorded) = self.entries.get(self.cursor) else {
            if self.names.contains_key(&call.name) {
                return Err(Divergence {
                    position: self.cursor as u32,
                    recorded: format!("step name `{}` already used earlier in this run", call.name),
                    replayed: describe_call(call),
                });
            }
            return Ok(Position::New {
                seq: self.cursor as u32,
            });
        };
        if !same_step(recorded, call) {
            return Err(Divergence {
                position: self.cursor as u32,
                recorded: describe_record(recorded),
                replayed: describe_call(call),
            });
        }
        self.cursor += 1;
        Ok(if recorded.status.is_final() {
            Position::Recorded(recorded.clone())
        } else {
            Position::InFlight(recorded.clone())
        })
    }

    /// Step `name`, if the guest has passed it: what a fan-out's awaits
    /// may wait on. A step the journal holds but the replay has not reached
    /// yet was not started by this execution (yet), so it is not found.
    pub fn passed(&self, name: &str) -> Option<&StepRecord> {
        let index = *self.names.get(name)?;
        if index >= self.cursor {
            return None;
        }
        self.entries.get(index)
    }

    /// Moves the cursor back to `position` (one the guest passed): a step
    /// call that parked the guest runs again from where it began.
    pub fn rewind(&mut self, position: u32) {
        self.cursor = self.cursor.min(position as usize);
    }

    /// What a parked guest must read again to catch up: how many entries
    /// it holds, and the names of those without an outcome.
    pub fn parked(&self) -> ParkedJournal {
        ParkedJournal {
            known: self.entries.len(),
            unfinished: self
                .entries
                .iter()
                .filter(|e| !e.status.is_final())
                .map(|e| e.name.clone())
                .collect(),
        }
    }

    /// Brings a parked guest's journal up to date with `steps`: entries it
    /// held, as they now stand, and entries recorded past them (which must
    /// follow on without a gap). The cursor stays where it is.
    pub fn refresh(&mut self, mut steps: Vec<StepRecord>) -> Result<(), String> {
        steps.sort_by_key(|s| s.seq);
        for step in steps {
            let seq = step.seq as usize;
            if let Some(entry) = self.entries.get_mut(seq) {
                if entry.name != step.name {
                    return Err(format!(
                        "journal entry {seq} is `{}` in memory but `{}` in the store",
                        entry.name, step.name
                    ));
                }
                *entry = step;
            } else if seq == self.entries.len() {
                self.names.insert(step.name.clone(), seq);
                self.entries.push(step);
            } else {
                return Err(format!(
                    "journal entry {seq} (`{}`) does not follow the {} entries held",
                    step.name,
                    self.entries.len()
                ));
            }
        }
        Ok(())
    }

    /// Stores the latest state of step `record.seq`: replaces an entry the
    /// guest already passed, or appends a new one and moves past it.
    pub fn settle(&mut self, record: StepRecord) {
        let seq = record.seq as usize;
        if let Some(entry) = self.entries.get_mut(seq) {
            *entry = record;
        } else {
            self.names.insert(record.name.clone(), self.entries.len());
            self.entries.push(record);
            self.cursor = self.entries.len();
        }
    }
}

fn same_step(recorded: &StepRecord, call: &StepCall) -> bool {
    recorded.kind == call.kind
        && recorded.name == call.name
        && recorded.rpc_name == call.rpc_name
        && recorded.input == call.input
}

/// Longest payload excerpt shown in a divergence message.
const EXCERPT: usize = 200;

fn excerpt(s: &str) -> String {
    if s.len() <= EXCERPT {
        return s.to_string();
    }
    let mut end = EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

fn describe(kind: StepKind, name: &str, rpc: Option<&str>, input: Option<&str>) -> String {
    let mut s = format!("{} step `{name}`", kind.as_str());
    if let Some(rpc) = rpc {
        s.push_str(&format!(" calling `{rpc}`"));
    }
    if let Some(input) = input {
        s.push_str(&format!(" with input {}", excerpt(input)));
    }
    s
}

fn describe_record(r: &StepRecord) -> String {
    describe(r.kind, &r.name, r.rpc_name.as_deref(), r.input.as_deref())
}

pub(crate) fn describe_call(c: &StepCall) -> String {
    describe(c.kind, &c.name, c.rpc_name.as_deref(), c.input.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunId, StepOptions, StepStatus};

    fn rpc(name: &str, target: &str, input: &str) -> StepCall {
        StepCall {
            kind: StepKind::Rpc,
            name: name.into(),
            rpc_name: Some(target.into()),
            input: Some(input.into()),
            options: StepOptions::default(),
        }
    }

    fn recorded(seq: u32, call: &StepCall, status: StepStatus) -> StepRecord {
        let mut r = StepRecord::new(&RunId::generate(), seq, call, 0);
        r.status = status;
        r.result = Some("1".into());
        r
    }

    #[test]
    fn replays_recorded_then_reports_new_steps() {
        let a = rpc("a", "m/f", "{}");
        let mut j = Journal::new(vec![recorded(0, &a, StepStatus::Succeeded)]);
        assert!(j.replaying());
        assert!(matches!(j.advance(&a), Ok(Position::Recorded(_))));
        assert!(!j.replaying());
        let b = rpc("b", "m/f", "{}");
        assert!(matches!(j.advance(&b), Ok(Position::New { seq: 1 })));
    }

    #[test]
    fn in_flight_steps_are_reported_as_such() {
        let a = rpc("a", "m/f", "{}");
        let mut j = Journal::new(vec![recorded(0, &a, StepStatus::Running)]);
        assert!(matches!(j.advance(&a), Ok(Position::InFlight(_))));
    }

    #[test]
    fn a_different_rpc_at_the_same_position_diverges_and_shows_both_sides() {
        let a = rpc("charge", "payments/charge", "{\"amount\":5}");
        let mut j = Journal::new(vec![recorded(0, &a, StepStatus::Succeeded)]);
        let other = rpc("charge", "payments/refund", "{\"amount\":5}");
        let d = j.advance(&other).unwrap_err();
        assert_eq!(d.position, 0);
        let text = d.to_string();
        assert!(
            text.contains("payments/charge") && text.contains("payments/refund"),
            "{text}"
        );
    }

    #[test]
    fn different_input_or_kind_diverges() {
        let a = rpc("a", "m/f", "{\"x\":1}");
        let mut j = Journal::new(vec![recorded(0, &a, StepStatus::Succeeded)]);
        assert!(j.advance(&rpc("a", "m/f", "{\"x\":2}")).is_err());
        let sleep = StepCall {
            kind: StepKind::Sleep,
            name: "a".into(),
            rpc_name: None,
            input: Some("{\"x\":1}".into()),
            options: StepOptions::default(),
        };
        assert!(j.advance(&sleep).is_err());
    }

    #[test]
    fn waiting_for_another_event_or_with_another_timeout_diverges() {
        let wait = |event: &str, timeout_ms: Option<u64>| StepCall {
            kind: StepKind::Event,
            name: "decision".into(),
            rpc_name: None,
            input: Some(
                crate::model::EventWait {
                    event: event.into(),
                    timeout_ms,
                }
                .to_json(),
            ),
            options: StepOptions::default(),
        };
        let recorded_wait = wait("approval", Some(1000));
        let journal = || Journal::new(vec![recorded(0, &recorded_wait, StepStatus::Succeeded)]);
        assert!(matches!(
            journal().advance(&wait("approval", Some(1000))),
            Ok(Position::Recorded(_))
        ));
        let d = journal()
            .advance(&wait("rejection", Some(1000)))
            .unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("\"approval\"") && text.contains("\"rejection\""),
            "{text}"
        );
        assert!(journal().advance(&wait("approval", Some(2000))).is_err());
        assert!(journal().advance(&wait("approval", None)).is_err());
    }

    #[test]
    fn a_join_over_other_members_diverges_and_shows_both_sides() {
        let join = |members: &[&str]| StepCall {
            kind: StepKind::Join,
            name: "first".into(),
            rpc_name: None,
            input: Some(serde_json::json!({ "members": members }).to_string()),
            options: StepOptions::default(),
        };
        let recorded_join = join(&["a", "b"]);
        let mut j = Journal::new(vec![recorded(0, &recorded_join, StepStatus::Succeeded)]);
        let d = j.advance(&join(&["a", "c"])).unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("join step `first`") && text.contains("\"b\"") && text.contains("\"c\""),
            "{text}"
        );
    }

    #[test]
    fn starting_another_child_workflow_diverges_and_names_both() {
        let child = |workflow: &str| StepCall {
            kind: StepKind::Child,
            name: "bill".into(),
            rpc_name: Some(workflow.into()),
            input: Some(r#"{"order":"o-1"}"#.into()),
            options: StepOptions::default(),
        };
        let mut j = Journal::new(vec![recorded(0, &child("billing"), StepStatus::Running)]);
        let d = j.advance(&child("invoicing")).unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("child step `bill` calling `billing`")
                && text.contains("child step `bill` calling `invoicing`"),
            "{text}"
        );
        // Starting an RPC where the journal started a child diverges too.
        let mut j = Journal::new(vec![recorded(0, &child("billing"), StepStatus::Running)]);
        assert!(
            j.advance(&rpc("bill", "billing", r#"{"order":"o-1"}"#))
                .is_err()
        );
    }

    #[test]
    fn started_steps_are_found_by_name_once_passed() {
        let a = rpc("a", "m/f", "{}");
        let b = rpc("b", "m/f", "{}");
        let mut j = Journal::new(vec![
            recorded(0, &a, StepStatus::Running),
            recorded(1, &b, StepStatus::Running),
        ]);
        j.advance(&a).unwrap();
        assert!(j.passed("a").is_some());
        // Recorded, but this execution has not started it (yet).
        assert!(j.passed("b").is_none());
        assert!(j.passed("c").is_none());
    }

    #[test]
    fn reusing_a_step_name_is_rejected() {
        let a = rpc("a", "m/f", "{}");
        let mut j = Journal::new(vec![recorded(0, &a, StepStatus::Succeeded)]);
        j.advance(&a).unwrap();
        let err = j.advance(&rpc("a", "m/g", "{}")).unwrap_err();
        assert!(err.recorded.contains("already used"), "{err}");
    }

    #[test]
    fn settle_appends_and_moves_past_new_steps() {
        let a = rpc("a", "m/f", "{}");
        let mut j = Journal::new(vec![]);
        let Ok(Position::New { seq }) = j.advance(&a) else {
            panic!("expected a new step")
        };
        j.settle(recorded(seq, &a, StepStatus::Succeeded));
        assert_eq!(j.position(), 1);
        assert!(!j.replaying());
    }

    #[test]
    fn long_inputs_are_excerpted_in_messages() {
        let big = format!("\"{}\"", "é".repeat(500));
        let text = describe_call(&rpc("a", "m/f", &big));
        assert!(text.contains("bytes)"), "{text}");
    }
}
