"""The sandbox probe in Python (see tests/guests/probe for the Rust one):
what can a workflow see of the host, and does replay repeat it?"""

import os
import random
import socket
import time
import uuid

import weft


def try_read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f"READ {len(f.read())} bytes"
    except Exception as e:
        return f"error: {e}"


def probe(ctx: weft.Context, input: dict) -> dict:
    started = time.monotonic()
    print("probe starting")
    ctx.info("before any step")
    env_vars = list(os.environ.keys())
    aws_key_visible = "AWS_SECRET_ACCESS_KEY" in os.environ or "AWS_ACCESS_KEY_ID" in os.environ
    files = {"/etc/passwd": try_read("/etc/passwd"), "weft.db": try_read("weft.db")}
    try:
        os.listdir("/")
        files["readDirRoot"] = "LISTED"
    except Exception as e:
        files["readDirRoot"] = f"error: {e}"
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=1)
        network = "CONNECTED"
    except Exception as e:
        network = f"error: {e}"
    # Integer nanoseconds: float seconds times 1000 can land a millisecond short.
    wall_clock_ms = time.time_ns() // 1_000_000
    logical_now_ms = ctx.now()
    rnd = random.randint(0, 10**9)
    # The body draws randomness (as an id generator would); replay skips the
    # body, so these draws must not shift the ones made after the step.
    def make_id() -> int:
        random.random()
        uuid.uuid4()
        return rnd % 1000

    inline_value = ctx.step("inline", make_id)
    # Drawn after the step and sent in the RPC's input: a replay that drew a
    # different value would send another input and fail as non-deterministic.
    nonce = random.randint(0, 10**9)
    print(f"after inline step: {inline_value}")
    ctx.info("after inline step")
    rpc_result = ctx.rpc("remote", "order-rpc/ship-order", {"orderId": "probe", "nonce": nonce}) if input.get("withRpc") else None
    ctx.info("after rpc step")
    ctx.sleep("nap", input.get("sleepMs", 1))
    ctx.info("after sleep")
    print("probe done")
    return {
        "envVars": env_vars,
        "awsKeyVisible": aws_key_visible,
        "args": [],
        "files": files,
        "network": network,
        "wallClockMs": wall_clock_ms,
        "logicalNowMs": logical_now_ms,
        "monotonicElapsedMs": int((time.monotonic() - started) * 1000),
        "random": rnd,
        "nonce": nonce,
        "inlineValue": inline_value,
        "rpcResult": rpc_result,
        "wallClockAfterSleepMs": time.time_ns() // 1_000_000,
        "logicalAfterSleepMs": ctx.now(),
    }


WitWorld = weft.workflow(probe)
