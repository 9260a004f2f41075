"""A Python workflow that misbehaves on request (`{"mode": ...}`)."""

import weft


def hostile(ctx: weft.Context, input: dict):
    mode = input.get("mode")
    if mode == "loop":
        while True:
            pass
    if mode == "alloc":
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))
    if mode == "fail":
        raise weft.WeftError("custom_failure", "the workflow gave up", {"n": input.get("n")})
    if mode == "throw":
        raise ValueError("not a WeftError")
    raise weft.WeftError("unknown_mode", f"no mode {mode}")


WitWorld = weft.workflow(hostile)
