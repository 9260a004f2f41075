"""The fan-out driver of tests/guests/rust/fanout, in Python: the same
input, the same output, so one scenario checks every language."""

import weft

SLOW = "fanout-rpc/slow"
ONCE = weft.RetryPolicy(max_attempts=1)


def shown(f: weft.Finished):
    return f.value if f.ok else {"error": f.error.code}


def fanout(ctx: weft.Context, input: dict) -> dict:
    if input.get("failWith"):
        raise weft.WeftError(input["failWith"], "asked to fail")
    out = {}
    if input.get("all"):
        started = [
            ctx.start_rpc("fan", SLOW, {"value": i, "ms": m.get("ms", 0), "fail": m.get("fail", False)}, retry=ONCE)
            for i, m in enumerate(input["all"])
        ]
        out["all"] = [
            r if not isinstance(r, weft.WeftError) else {"error": r.code}
            for r in ctx.gather(started, return_exceptions=True)
        ]
    if input.get("quorum"):
        started = [
            ctx.start_rpc("quorum", SLOW, {"value": i, "ms": m.get("ms", 0), "fail": m.get("fail", False)}, retry=ONCE)
            for i, m in enumerate(input["quorum"])
        ]
        joined = ctx.join_until("quorum-first", started, min_successes=2)
        out["quorum"] = {"order": [f.index for f in joined.finished], "satisfied": joined.satisfied}
    if input.get("raceMs") is not None:
        timer = ctx.start_sleep("race-timer", input["raceMs"])
        event = ctx.start_wait_event("race-event", "go")
        first = ctx.select("race", [event, timer])
        if first.index == 0:
            out["race"] = {"winner": "event", "value": shown(first)}
        else:
            out["race"] = {"winner": "timer", "value": None}
    if input.get("bounded"):
        b = input["bounded"]
        results = ctx.map_bounded(
            "bounded-next", list(range(b["items"])), b["limit"],
            lambda c, item, i: c.start_rpc("bounded", SLOW, {"value": item * 10, "ms": (item + 1) * b["ms"]}, retry=ONCE),
        )
        out["bounded"] = [shown(f) for f in results]
    if input.get("spawn"):
        out["spawned"] = ctx.spawn_child("spawned", input["spawn"]["workflow"], input["spawn"]["input"])
    if input.get("children"):
        started = [ctx.start_child("kid", c["workflow"], c["input"]) for c in input["children"]]
        out["children"] = [
            r if not isinstance(r, weft.WeftError) else {"error": r.code}
            for r in ctx.gather(started, return_exceptions=True)
        ]
    return out


WitWorld = weft.workflow(fanout)
