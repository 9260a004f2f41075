"""The event-wait driver of tests/guests/rust/inbox, in Python: the same
input, the same output, so one scenario checks every language."""

import weft


def waits(ctx: weft.Context, input: dict) -> list:
    if input.get("sleepMs", 0) > 0:
        ctx.sleep("before", input["sleepMs"])
    got = []
    for wait in input["waits"]:
        try:
            payload = ctx.wait_event(f"wait-{wait['event']}", wait["event"], wait.get("timeoutMs"))
            got.append({"event": wait["event"], "payload": payload})
        except weft.WeftError as e:
            if e.code != "timeout":
                raise
            got.append({"event": wait["event"], "timedOut": True})
    return got


WitWorld = weft.workflow(waits)
