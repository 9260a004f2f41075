//! Write Weft RPC step functions in Rust.
//!
//! An RPC module is a component of world `weft:workflow/rpc` holding named
//! functions; workflows call them as `<module>/<function>`. Each function
//! takes a [`Call`] (who is calling, which attempt) and a deserialisable
//! input, and returns a serialisable result or an [`Error`].
//!
//! RPC code runs once per attempt and may be retried, so make side effects
//! idempotent with [`Call::idempotency_key`], which is the same for every
//! attempt of one step.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use weft_rpc::{Call, Error};
//!
//! #[derive(Deserialize)]
//! struct Charge { cents: u64 }
//! #[derive(Serialize)]
//! struct Receipt { charge_id: String }
//!
//! fn charge(call: &Call, req: Charge) -> Result<Receipt, Error> {
//!     if req.cents == 0 {
//!         return Err(Error::new("invalid_amount", "nothing to charge").permanent());
//!     }
//!     Ok(Receipt { charge_id: format!("ch_{}", call.idempotency_key) })
//! }
//!
//! weft_rpc::rpc_functions! {
//!     "charge" => charge,
//! }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use weft_guest_core::Error;

#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated bindings")]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "rpc",
        pub_export_macro: true,
        export_macro_name: "__export_rpc_world",
        default_bindings_module: "::weft_rpc::__bindings",
    });
}

use __bindings::weft::workflow::{rpc_context, types};

/// What the host tells a function about the call it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `<run id>/<step name>`: identical for every attempt of one step.
    pub idempotency_key: String,
    pub run_id: String,
    pub step_name: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn call(info: rpc_context::CallInfo) -> Call {
        Call {
            idempotency_key: info.idempotency_key,
            run_id: info.run_id,
            step_name: info.step_name,
            attempt: info.attempt,
        }
    }

    /// Decodes the input, runs the function, encodes the result.
    pub fn dispatch<I, O, E, F>(
        call: &Call,
        input: &str,
        function: F,
    ) -> Result<String, types::Error>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Into<Error>,
        F: FnOnce(&Call, I) -> Result<O, E>,
    {
        weft_guest_core::decode::<I>("the RPC input", input)
            .and_then(|input| function(call, input).map_err(Into::into))
            .and_then(|output| weft_guest_core::encode("the RPC result", &output))
            .map_err(to_wit_error)
    }

    pub fn unknown_function(name: &str, known: &[&str]) -> types::Error {
        to_wit_error(
            Error::new(
                "unknown_function",
                format!("this module has no function {name:?}; it has {known:?}"),
            )
            .permanent(),
        )
    }

    fn to_wit_error(e: Error) -> types::Error {
        types::Error {
            details: e.details_json(),
            code: e.code,
            message: e.message,
        }
    }
}

/// Declares the functions a component exports, by name.
///
/// Each function is `fn(&Call, Input) -> Result<Output, E>` with a
/// deserialisable `Input`, serialisable `Output` and `E: Into<Error>`.
#[macro_export]
macro_rules! rpc_functions {
    ($($name:literal => $function:path),+ $(,)?) => {
        struct __WeftRpc;

        impl $crate::__bindings::Guest for __WeftRpc {
            fn handle(
                function: ::std::string::String,
                input: ::std::string::String,
                call: $crate::__bindings::CallInfo,
            ) -> ::std::result::Result<::std::string::String, $crate::__bindings::Error> {
                let call = $crate::__private::call(call);
                match function.as_str() {
                    $($name => $crate::__private::dispatch(&call, &input, $function),)+
                    other => ::std::result::Result::Err($crate::__private::unknown_function(other, &[$($name),+])),
                }
            }
        }

        $crate::__bindings::__export_rpc_world!(__WeftRpc with_types_in $crate::__bindings);
    };
}
