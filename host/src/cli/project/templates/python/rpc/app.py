"""A Weft RPC module: functions that workflows call as `<module>/<function>`.
`greet` takes {"name": "Ada"} and gives
{"greeting": "Hello, Ada! (RPC attempt 1)"}.

A function runs once per attempt and may be retried: make side effects
idempotent with `call.idempotency_key`, the same for every attempt.
"""

from weft import rpc


def greet(call: rpc.Call, person: dict) -> dict:
    if not person.get("name"):
        raise rpc.WeftError("invalid_name", "a name is needed").permanent()
    return {"greeting": f"Hello, {person['name']}! (RPC attempt {call.attempt})"}


WitWorld = rpc.functions({"greet": greet})
