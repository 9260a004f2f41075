//! The smallest useful workflow: one inline step that builds a greeting.
//!
//! `{"name": "Ada"}` → `{"greeting": "Hello, Ada!"}`

use serde::{Deserialize, Serialize};
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
struct Input {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

fn hello(ctx: &mut Context, input: Input) -> Result<Output, Error> {
    let greeting: String = ctx.step("greet", || {
        Ok::<_, Error>(format!("Hello, {}!", input.name))
    })?;
    ctx.info(&greeting);
    Ok(Output { greeting })
}

weft_sdk::workflow!(hello);
