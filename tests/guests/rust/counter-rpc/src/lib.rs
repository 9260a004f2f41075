//! The RPC side of the counter workload: `incr` returns its input plus one.

use weft_rpc::{Call, Error};

fn incr(_call: &Call, x: u64) -> Result<u64, Error> {
    Ok(x + 1)
}

weft_rpc::rpc_functions! {
    "incr" => incr,
}
