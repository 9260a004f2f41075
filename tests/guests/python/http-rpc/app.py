"""An RPC module that makes outbound HTTP requests with `weft.http`, to
test the client and the per-module host allow-list (the Python twin of the
Rust `fetcher` and of `get` in the JavaScript hostile-rpc module)."""

from weft import http, rpc


def get(call: rpc.Call, req: dict) -> dict:
    response = http.get(req["url"])
    return {"status": response.status, "body": response.text()}


def send(call: rpc.Call, req: dict) -> dict:
    """`req["method"]` to `req["url"]` with `req["json"]` as the body and the
    call's idempotency key as a header; the whole response back."""
    response = http.request(
        req["method"], req["url"], json=req.get("json"),
        headers={"Idempotency-Key": call.idempotency_key},
    )
    return {
        "status": response.status,
        "ok": response.ok,
        "headers": response.headers,
        "body": response.json() if response.body else None,
    }


WitWorld = rpc.functions({"get": get, "send": send})
