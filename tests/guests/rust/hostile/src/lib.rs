//! A workflow that misbehaves on request: `{"mode": "..."}` picks how.
//! Each mode must end the run `failed` with a named error code while the
//! host keeps serving other runs.

use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
struct Input {
    mode: String,
    #[serde(default)]
    n: u64,
}

/// Deep recursion on the wasm call stack.
#[inline(never)]
#[allow(
    unconditional_recursion,
    reason = "this mode exists to overflow the stack"
)]
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) + 1
}

/// Deep recursion whose frames live on Rust's shadow stack in linear
/// memory: it runs off the bottom of memory rather than the call stack.
#[inline(never)]
#[allow(
    unconditional_recursion,
    reason = "this mode exists to overflow the stack"
)]
fn recurse_shadow(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let mut local = *pad;
    recurse_shadow(depth + 1, &mut local) + u64::from(local[0])
}

fn hostile(ctx: &mut Context, input: Input) -> Result<Value, Error> {
    match input.mode.as_str() {
        "loop" => {
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "recurse" => Ok(json!(recurse(0))),
        "recurse-shadow" => {
            let mut pad = [0u8; 256];
            Ok(json!(recurse_shadow(0, &mut pad)))
        }
        "panic" => panic!("the hostile guest panicked on purpose"),
        "trap-in-step" => {
            let v: u64 = ctx.step("explode", || -> Result<u64, Error> {
                let zero = std::hint::black_box(0u64);
                Ok(1 / zero)
            })?;
            Ok(json!(v))
        }
        "big-output" => Ok(json!("x".repeat((input.n as usize).max(1)))),
        "big-step-result" => {
            let n = input.n as usize;
            let v: String = ctx.step("big", || Ok::<_, Error>("y".repeat(n)))?;
            Ok(json!(v.len()))
        }
        "many-steps" => {
            for i in 0..input.n {
                let _: u64 = ctx.step("tick", || Ok::<_, Error>(i))?;
            }
            Ok(json!(input.n))
        }
        "invalid-json" => {
            // Bypasses the SDK's serialisation to hand the host a non-JSON
            // string through the raw binding.
            Err(Error::new("never", "unreachable"))
        }
        "flaky-step" => {
            // Fails its first `n` attempts, then succeeds.
            let v: u64 = ctx.step_with_attempt("flaky", &Default::default(), |attempt| {
                if u64::from(attempt) <= input.n {
                    return Err(Error::new(
                        "flaky",
                        format!("attempt {attempt} fails on purpose"),
                    ));
                }
                Ok(u64::from(attempt))
            })?;
            Ok(json!(v))
        }
        "fail" => Err(Error::new("custom_failure", "the workflow gave up")
            .with_details(json!({ "n": input.n }))),
        other => Err(Error::new("unknown_mode", format!("no mode {other:?}"))),
    }
}

struct Raw;

impl weft_sdk::__bindings::Guest for Raw {
    fn run(input: String) -> Result<String, weft_sdk::__bindings::Error> {
        if input.contains("\"invalid-json\"") {
            return Ok("{not json".to_string());
        }
        if input.contains("\"invalid-utf8\"") {
            // Hands the host a string that is not UTF-8, which the
            // component model forbids.
            #[allow(unsafe_code, reason = "this mode exists to break the string contract")]
            let bytes = unsafe { String::from_utf8_unchecked(vec![b'"', 0xff, 0xfe, b'"']) };
            return Ok(bytes);
        }
        weft_sdk::__private::run(input, hostile)
    }
}

weft_sdk::__bindings::__export_workflow_world!(Raw with_types_in weft_sdk::__bindings);
