//! Write durable Weft workflows in Rust.
//!
//! A workflow is an ordinary function from a JSON-deserialisable input to a
//! JSON-serialisable output. Everything it does to the outside world goes
//! through its [`Context`] as a *step*: a call to an RPC step function, a
//! block of its own code, a durable sleep, or a wait for an event sent to
//! the run. Steps can also be started without waiting and joined later
//! (fan-out: [`Context::start_rpc`], [`Context::join_all`],
//! [`Context::select`], [`Context::join_until`], [`Context::map_bounded`]). The host records each step's
//! outcome and, after a crash or a long wait, replays the function from the
//! top, handing recorded outcomes back instead of repeating the work. Your
//! code therefore has to be deterministic between steps, which the host
//! enforces: clocks, randomness and the environment are the run's own.
//!
//! # Example
//!
//! Build with `cargo build --target wasm32-wasip2` (crate type `cdylib`),
//! deploy with `weft deploy target/wasm32-wasip2/release/greet.wasm --name greet`.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! use weft_sdk::{Context, Error};
//!
//! #[derive(Deserialize)]
//! struct Order { id: String, amount_cents: u64 }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Receipt { charge_id: String }
//!
//! fn checkout(ctx: &mut Context, order: Order) -> Result<Receipt, Error> {
//!     // Runs once; its result is recorded and replayed afterwards.
//!     let total = ctx.step("total", || Ok::<_, Error>(order.amount_cents + 499))?;
//!     // A remote step, executed by a worker with retries.
//!     let receipt: Receipt = ctx.rpc(
//!         "charge",
//!         "payments/charge",
//!         &serde_json::json!({ "order": order.id, "cents": total }),
//!     )?;
//!     // Survives restarts of the host.
//!     ctx.sleep("cool-off", Duration::from_secs(5));
//!     ctx.info(&format!("charged {}", receipt.charge_id));
//!     Ok(receipt)
//! }
//!
//! weft_sdk::workflow!(checkout);
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use weft_guest_core::Error;

mod fanout;
pub use fanout::{Completion, Joined, Started};

#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated bindings")]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "workflow",
        pub_export_macro: true,
        export_macro_name: "__export_workflow_world",
        default_bindings_module: "::weft_sdk::__bindings",
    });
}

use __bindings::weft::workflow::{steps, types};

/// How a failing step is retried. Unset fields of [`StepOptions`] take the
/// host's defaults (3 attempts, 1 s initial delay doubling up to 60 s).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub backoff_factor: f64,
    pub max_delay: Duration,
    /// Fraction (0..=1) by which each delay is randomly spread.
    pub jitter: f64,
}

impl RetryPolicy {
    /// `max_attempts` attempts in all, 1 s apart doubling to at most 60 s.
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            initial_delay: Duration::from_secs(1),
            backoff_factor: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.1,
        }
    }

    /// A single attempt: failures are final.
    pub fn none() -> Self {
        Self::attempts(1)
    }

    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    pub fn backoff_factor(mut self, f: f64) -> Self {
        self.backoff_factor = f;
        self
    }

    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    pub fn jitter(mut self, j: f64) -> Self {
        self.jitter = j;
        self
    }
}

/// Options of one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepOptions {
    pub retry: Option<RetryPolicy>,
    /// RPC steps: an attempt running longer than this is abandoned and
    /// counts as failed.
    pub timeout: Option<Duration>,
}

impl StepOptions {
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn to_wit(&self) -> types::StepOptions {
        types::StepOptions {
            retry: self.retry.as_ref().map(|r| types::RetryPolicy {
                max_attempts: r.max_attempts,
                initial_delay_ms: r.initial_delay.as_millis() as u64,
                backoff_factor: r.backoff_factor,
                max_delay_ms: r.max_delay.as_millis() as u64,
                jitter: r.jitter,
            }),
            timeout_ms: self.timeout.map(|t| t.as_millis() as u64),
        }
    }
}

fn to_wit_error(e: Error) -> types::Error {
    types::Error {
        details: e.details_json(),
        code: e.code,
        message: e.message,
    }
}

fn from_wit_error(e: types::Error) -> Error {
    Error::from_parts(e.code, e.message, e.details)
}

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// A workflow's handle on the host. Every method that takes a step name
/// records a step; names must be unique within a run, so a name used again
/// gets a suffix (`poll`, `poll#2`, `poll#3`...), which is deterministic as
/// long as the workflow is.
pub struct Context {
    used_names: HashMap<String, u32>,
}

impl Context {
    #[doc(hidden)]
    pub fn new() -> Self {
        Self {
            used_names: HashMap::new(),
        }
    }

    fn unique(&mut self, name: &str) -> String {
        let count = self.used_names.entry(name.to_string()).or_insert(0);
        *count += 1;
        if *count == 1 {
            name.to_string()
        } else {
            format!("{name}#{count}")
        }
    }

    /// Calls RPC step function `rpc` (`<module>/<function>`) with `input`,
    /// using the host's default retry policy. Returns its result, or its last
    /// error once retries are exhausted.
    pub fn rpc<I: Serialize, O: DeserializeOwned>(
        &mut self,
        step: &str,
        rpc: &str,
        input: &I,
    ) -> Result<O, Error> {
        self.rpc_with(step, rpc, input, &StepOptions::default())
    }

    /// [`Context::rpc`] with explicit options.
    pub fn rpc_with<I: Serialize, O: DeserializeOwned>(
        &mut self,
        step: &str,
        rpc: &str,
        input: &I,
        options: &StepOptions,
    ) -> Result<O, Error> {
        let name = self.unique(step);
        let input = weft_guest_core::encode(&format!("the input of step `{name}`"), input)?;
        let result =
            steps::call_rpc(&name, rpc, &input, options.to_wit()).map_err(from_wit_error)?;
        weft_guest_core::decode(&format!("the result of step `{name}`"), &result)
    }

    /// Runs `f` as an inline step: once, with its result recorded. On replay
    /// the recorded result is returned and `f` is not called. A failure is
    /// retried with the default policy.
    pub fn step<T, E, F>(&mut self, name: &str, f: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Error>,
        F: FnMut() -> Result<T, E>,
    {
        self.step_with(name, &StepOptions::default(), f)
    }

    /// [`Context::step`] with explicit options.
    pub fn step_with<T, E, F>(
        &mut self,
        name: &str,
        options: &StepOptions,
        mut f: F,
    ) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Error>,
        F: FnMut() -> Result<T, E>,
    {
        self.step_with_attempt(name, options, |_| f())
    }

    /// [`Context::step_with`] whose code learns which attempt it is (from 1).
    /// Retries may happen in a later activation, so this, not a counter kept
    /// in the closure, is how step code can tell attempts apart.
    pub fn step_with_attempt<T, E, F>(
        &mut self,
        name: &str,
        options: &StepOptions,
        mut f: F,
    ) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Error>,
        F: FnMut(u32) -> Result<T, E>,
    {
        let name = self.unique(name);
        let mut answer = steps::begin_step(&name, options.to_wit());
        loop {
            match answer {
                steps::InlineStart::Recorded(Ok(json)) => {
                    return weft_guest_core::decode(&format!("the result of step `{name}`"), &json);
                }
                steps::InlineStart::Recorded(Err(e)) => return Err(from_wit_error(e)),
                steps::InlineStart::Execute(attempt) => {
                    let outcome = f(attempt).map_err(Into::into).and_then(|v| {
                        weft_guest_core::encode(&format!("the result of step `{name}`"), &v)
                    });
                    let outcome = outcome.map_err(to_wit_error);
                    answer = steps::complete_step(&name, outcome.as_deref());
                }
            }
        }
    }

    /// Sleeps durably for `duration`: the run is suspended and resumed by a
    /// timer, surviving restarts of the host.
    pub fn sleep(&mut self, name: &str, duration: Duration) {
        let name = self.unique(name);
        steps::sleep(&name, duration.as_millis() as u64);
    }

    /// Waits for the next event `event` sent to this run from outside
    /// (`weft send-event`, `POST /v1/runs/{id}/events/{event}`) and returns
    /// its payload. Events wait in the run's inbox until a wait takes them,
    /// oldest first and one per wait, so an event sent before the workflow
    /// got here is taken at once. With a `timeout`, the wait fails with
    /// code `timeout` if no event came within that long of this step being
    /// first reached (`None` waits without limit); an event that arrives
    /// later stays for the next wait of that name.
    ///
    /// The payload is recorded in the journal: a replay gets the same one.
    pub fn wait_event<T: DeserializeOwned>(
        &mut self,
        step: &str,
        event: &str,
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let name = self.unique(step);
        let timeout_ms = timeout.map(|t| t.as_millis() as u64);
        let payload = steps::wait_event(&name, event, timeout_ms).map_err(from_wit_error)?;
        weft_guest_core::decode(&format!("the event taken by step `{name}`"), &payload)
    }

    /// Creates a callback and returns its token, to hand to another system
    /// (a link in an email, a webhook URL): it completes the callback once
    /// with `POST /v1/callbacks/{token}` (`weft complete-callback`). The
    /// token is recorded, so a replay gets the same one. With a `timeout`
    /// the callback expires that long after this step.
    pub fn create_callback(&mut self, step: &str, timeout: Option<Duration>) -> String {
        let name = self.unique(step);
        steps::create_callback(&name, timeout.map(|t| t.as_millis() as u64))
    }

    /// Waits until the callback with `token` (created by this run) is
    /// completed and returns its result, or the error it was completed
    /// with; an expired callback fails with code `timeout`.
    pub fn await_callback<T: DeserializeOwned>(
        &mut self,
        step: &str,
        token: &str,
    ) -> Result<T, Error> {
        let name = self.unique(step);
        let result = steps::await_callback(&name, token).map_err(from_wit_error)?;
        weft_guest_core::decode(&format!("the result of callback wait `{name}`"), &result)
    }

    /// The run's logical time, which replays identically.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_millis())
    }

    /// [`Context::now`] in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        steps::now()
    }

    /// A random number that replays identically: a function of the run and
    /// the journal position, so draws inside a skipped step body shift
    /// nothing. `getrandom`-based crates (`uuid::new_v4`, `OsRng`) get the
    /// same guarantee; generators seeded once per process (`rand::rng()`,
    /// `HashMap` keys) do not: seed those from this after a step.
    pub fn random_u64(&mut self) -> u64 {
        steps::random()
    }

    /// Logs a line on the run; lines are not repeated when the run replays.
    pub fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => types::LogLevel::Trace,
            Level::Debug => types::LogLevel::Debug,
            Level::Info => types::LogLevel::Info,
            Level::Warn => types::LogLevel::Warn,
            Level::Error => types::LogLevel::Error,
        };
        steps::log(level, message);
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Decodes the input, runs the workflow function, encodes its output.
    pub fn run<I, O, E, F>(input: String, workflow: F) -> Result<String, types::Error>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Into<Error>,
        F: FnOnce(&mut Context, I) -> Result<O, E>,
    {
        let result = weft_guest_core::decode::<I>("the workflow input", &input).and_then(|input| {
            let mut ctx = Context::new();
            let output = workflow(&mut ctx, input).map_err(Into::into)?;
            weft_guest_core::encode("the workflow output", &output)
        });
        result.map_err(to_wit_error)
    }
}

/// Declares the workflow function a component exports.
///
/// The function takes `&mut Context` and any deserialisable input, and
/// returns `Result<Output, E>` where `Output` is serialisable and `E`
/// converts into [`Error`].
#[macro_export]
macro_rules! workflow {
    ($function:path) => {
        struct __WeftWorkflow;

        impl $crate::__bindings::Guest for __WeftWorkflow {
            fn run(input: ::std::string::String) -> ::std::result::Result<::std::string::String, $crate::__bindings::Error> {
                $crate::__private::run(input, $function)
            }
        }

        $crate::__bindings::__export_workflow_world!(__WeftWorkflow with_types_in $crate::__bindings);
    };
}
