"""tests/guests/rust/callback in Python: the same input and output."""

import weft


def callback(ctx: weft.Context, input: dict) -> dict:
    token = ctx.create_callback("approval-link", input.get("timeoutMs"))
    ctx.info(f"callback token: {token}")
    try:
        return {"result": ctx.await_callback("await-approval", token)}
    except weft.WeftError as e:
        return {"error": e.code}


WitWorld = weft.workflow(callback)
