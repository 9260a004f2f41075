"""A Weft workflow. {"name": "Ada"} gives {"greeting": "Hello, Ada!"}, built
by an inline step; with "greeter": "<module>" the greeting comes from that
RPC module's `greet` function instead (`weft new --kind rpc`).

Between steps the code must be deterministic: the host replays it from the
top on every resume and hands back each step's recorded outcome.
"""

import weft


def hello(ctx: weft.Context, input: dict) -> dict:
    name = input["name"]
    if input.get("greeter"):
        greeting = ctx.rpc("greet", f"{input['greeter']}/greet", {"name": name})["greeting"]
    else:
        greeting = ctx.step("greet", lambda: f"Hello, {name}!")
    ctx.info(greeting)
    return {"greeting": greeting}


WitWorld = weft.workflow(hello)
