"""Write Weft RPC step functions in Python.

An RPC module is a component of world `weft:workflow/rpc` holding named
functions; workflows call them as `<module>/<function>`. Each function takes
the call (who is calling, which attempt) and the decoded JSON input, and
returns a JSON-encodable result or raises a `WeftError`.

Unlike workflow code, a function runs once per attempt and is never
replayed, so it may do anything the sandbox allows; make side effects
idempotent with `call.idempotency_key`, the same for every attempt of one
step.

    from weft import rpc

    def charge(call: rpc.Call, req: dict) -> dict:
        if req["cents"] <= 0:
            raise rpc.WeftError("invalid_amount", "nothing to charge").permanent()
        return {"chargeId": f"ch_{call.idempotency_key}"}

    WitWorld = rpc.functions({"charge": charge})

An error raised without `.permanent()` is retried by the host under the
step's retry policy; any other exception counts as a retryable `error`.

Outbound HTTP goes through `weft.http` (`http.get(url)`, `http.post(url,
json=...)`), and only to the hosts the module was deployed with
(`--allow-host`); a request anywhere else raises the permanent
`WeftError("http_failed", ...)`.
"""

import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict

import wit_world
from componentize_py_types import Err

from weft import WeftError, _as_weft_error

__all__ = ["Call", "Function", "WeftError", "functions"]


@dataclass(frozen=True)
class Call:
    """What the host tells a function about the call it serves."""

    idempotency_key: str
    """`<run id>/<step name>`: identical for every attempt of one step."""
    run_id: str
    step_name: str
    attempt: int
    """1 for the first attempt."""


Function = Callable[[Call, Any], Any]
"""`fn(call, input) -> result`: input and result are JSON values."""


def functions(table: Dict[str, Function]) -> type:
    """The component's `WitWorld`, dispatching each call to `table[name]`.
    An unknown name fails with the permanent error `unknown_function`, an
    input that is not JSON with `invalid_input`."""

    class WitWorld(wit_world.WitWorld):  # type: ignore[misc, name-defined]
        def handle(self, function: str, input: str, call: Any) -> str:
            fn = table.get(function)
            if fn is None:
                known = ", ".join(sorted(table)) or "none"
                raise Err(WeftError(
                    "unknown_function", f"this module has no function {function!r}; it has {known}",
                ).permanent().to_wire())
            try:
                parsed = json.loads(input)
            except ValueError as e:
                raise Err(WeftError("invalid_input", f"the RPC input is not JSON: {e}").permanent().to_wire())
            info = Call(call.idempotency_key, call.run_id, call.step_name, call.attempt)
            try:
                result = fn(info, parsed)
            except Err:
                raise
            except Exception as e:
                raise Err(_as_weft_error(e).to_wire())
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise Err(WeftError(
                    "invalid_output",
                    f"function {function!r} is async; Python RPC functions must be plain functions",
                ).permanent().to_wire())
            try:
                return json.dumps(result)
            except (TypeError, ValueError) as e:
                # A result JSON cannot carry is the module's bug, not a
                # passing failure: permanent `invalid_output`, as in Rust.
                raise Err(WeftError(
                    "invalid_output", f"the RPC result cannot be serialised: {e}",
                ).permanent().to_wire())

    return WitWorld
