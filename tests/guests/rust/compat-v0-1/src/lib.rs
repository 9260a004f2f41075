//! A workflow built against `weft:workflow@0.1.0` (`wit/0.1.0/`) with raw
//! bindings, as a guest compiled before 0.2.0 existed was: the host must
//! keep running it. It uses every 0.1.0 import: an inline step, an RPC
//! (`counter-rpc/incr`), a sleep, the clock, randomness and a log line.
//! Input `{"n": <u64>}`; output `{"x": n + 2, "slept": true}`.

wit_bindgen::generate!({
    path: "../../../../wit/0.1.0",
    world: "workflow",
});

use weft::workflow::steps;
use weft::workflow::types::{LogLevel, StepOptions};

struct Compat;

fn options() -> StepOptions {
    StepOptions {
        retry: None,
        timeout_ms: None,
    }
}

fn number(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at..].split_once(':')?.1.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Guest for Compat {
    fn run(input: String) -> Result<String, Error> {
        let n = number(&input, "n").ok_or_else(|| Error {
            code: "invalid_input".into(),
            message: "expected {\"n\": <number>}".into(),
            details: None,
        })?;
        let mut answer = steps::begin_step("plus-one", options());
        let x = loop {
            match answer {
                steps::InlineStart::Recorded(Ok(json)) => break json,
                steps::InlineStart::Recorded(Err(e)) => return Err(e),
                steps::InlineStart::Execute(_) => {
                    answer = steps::complete_step("plus-one", Ok(&(n + 1).to_string()));
                }
            }
        };
        let x = steps::call_rpc("incr", "counter-rpc/incr", &x, options())?;
        steps::sleep("pause", 10);
        let _ = (steps::now(), steps::random());
        steps::log(LogLevel::Info, &format!("0.1.0 guest reached {x}"));
        Ok(format!("{{\"x\":{x},\"slept\":true}}"))
    }
}

export!(Compat);
