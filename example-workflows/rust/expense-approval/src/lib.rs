//! An expense waits for a manager's decision, sent to the run as an
//! `approval` event. If none comes in time it is escalated (to the
//! director, say) and waits again; a second silence rejects it.
//!
//! Input: `{"expenseId": "e-7", "amountCents": 125000, "submitter": "ada",
//! "approvalTimeoutMs": 86400000, "escalationTimeoutMs": 172800000}`.
//! Send a decision with
//! `weft send-event <run> approval --data '{"approved": true, "by": "grace"}'`.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expense {
    expense_id: String,
    amount_cents: u64,
    submitter: String,
    approval_timeout_ms: u64,
    escalation_timeout_ms: u64,
}

/// The payload of an `approval` event.
#[derive(Deserialize)]
struct Decision {
    approved: bool,
    by: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    expense_id: String,
    status: &'static str,
    decided_by: Option<String>,
    note: Option<String>,
    escalated: bool,
}

/// Waits for a decision; `Ok(None)` when the wait timed out.
fn decision(ctx: &mut Context, step: &str, timeout_ms: u64) -> Result<Option<Decision>, Error> {
    match ctx.wait_event(step, "approval", Some(Duration::from_millis(timeout_ms))) {
        Ok(decision) => Ok(Some(decision)),
        Err(e) if e.code == "timeout" => Ok(None),
        Err(e) => Err(e),
    }
}

fn approve(ctx: &mut Context, expense: Expense) -> Result<Outcome, Error> {
    let id = expense.expense_id.clone();
    ctx.info(&format!(
        "expense {id} of {} cents from {} awaits approval",
        expense.amount_cents, expense.submitter
    ));
    let mut escalated = false;
    let mut decided = decision(ctx, "await-manager", expense.approval_timeout_ms)?;
    if decided.is_none() {
        escalated = true;
        ctx.step("escalate", || {
            Ok::<_, Error>(format!("expense {id} escalated after no decision"))
        })?;
        ctx.warn(&format!("expense {id} escalated"));
        decided = decision(ctx, "await-director", expense.escalation_timeout_ms)?;
    }
    let (status, decided_by, note) = match decided {
        Some(d) if d.approved => ("approved", Some(d.by), d.note),
        Some(d) => ("rejected", Some(d.by), d.note),
        None => ("rejected_unanswered", None, None),
    };
    ctx.info(&format!("expense {id} {status}"));
    Ok(Outcome {
        expense_id: id,
        status,
        decided_by,
        note,
        escalated,
    })
}

weft_sdk::workflow!(approve);
