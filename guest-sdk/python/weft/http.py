"""Outbound HTTP for Python RPC modules, through the host's `wasi:http`.

A small synchronous client: one call sends a request and returns the whole
response. It only works in an RPC module (world `weft:http-client/rpc`,
which `weft build` and the repository's build use for every Python RPC
module); a workflow has no network, its effects are its steps.

    from weft import http, rpc

    def quote(call: rpc.Call, req: dict) -> dict:
        r = http.get(f"https://api.example.com/quotes/{req['sku']}")
        if not r.ok:
            raise rpc.WeftError("quote_failed", f"the API answered {r.status}")
        return r.json()

    def notify(call: rpc.Call, req: dict) -> dict:
        r = http.post("https://hooks.example.com/orders", json=req,
                      headers={"idempotency-key": call.idempotency_key})
        return {"status": r.status}

The host lets a module reach only the hosts it was deployed with
(`weft deploy --allow-host api.example.com`); a request anywhere else is
refused before any connection is made. Every failure to get a response
raises `WeftError` with the code `http_failed`, the code the Rust and
JavaScript RPC modules of this repository use for the same failures:

- permanent (not retried) when retrying cannot help: a host that is not
  allow-listed, a URL or header the request cannot carry;
- retryable otherwise (DNS, connection refused or reset, timeouts), under
  the step's retry policy.

An answer with any status, 404 and 500 included, is a `Response`, not an
error: the function decides what a status means. The attempt's own timeout
and memory limit bound a request and the body it reads.
"""

import json as _json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from componentize_py_types import Err

from weft import WeftError

try:
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as wasi
except ImportError as e:  # pragma: no cover - depends on the build
    raise ImportError(
        "weft.http needs the world weft:http-client/rpc (a Python RPC module "
        "built by `weft build`); workflows have no network: make the request "
        "in an RPC step"
    ) from e

__all__ = ["Response", "get", "post", "request"]

Body = Union[bytes, str, None]

# `wasi:io` caps one blocking write at 4096 bytes; reads may be larger.
_WRITE_CHUNK = 4096
_READ_CHUNK = 64 * 1024

_METHODS = {
    "GET": wasi.Method_Get,
    "HEAD": wasi.Method_Head,
    "POST": wasi.Method_Post,
    "PUT": wasi.Method_Put,
    "DELETE": wasi.Method_Delete,
    "CONNECT": wasi.Method_Connect,
    "OPTIONS": wasi.Method_Options,
    "TRACE": wasi.Method_Trace,
    "PATCH": wasi.Method_Patch,
}

# Failures that another attempt would meet again: the request itself is
# wrong or not allowed. Everything else (DNS, connections, timeouts, a
# broken response) may pass, so the host retries it.
_PERMANENT = (
    wasi.ErrorCode_HttpRequestDenied,
    wasi.ErrorCode_HttpRequestMethodInvalid,
    wasi.ErrorCode_HttpRequestUriInvalid,
    wasi.ErrorCode_HttpRequestUriTooLong,
    wasi.ErrorCode_HttpRequestHeaderSize,
    wasi.ErrorCode_HttpRequestHeaderSectionSize,
    wasi.ErrorCode_HttpRequestBodySize,
    wasi.ErrorCode_HttpRequestLengthRequired,
)


@dataclass(frozen=True)
class Response:
    """A complete HTTP response: status, headers and the whole body."""

    status: int
    headers: Dict[str, str]
    """Names in lower case; a header sent more than once has its values
    joined with `, `."""
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded as text (undecodable bytes replaced)."""
        return self.body.decode(encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` if it is not."""
        return _json.loads(self.body)


def get(url: str, *, headers: Optional[Mapping[str, str]] = None) -> Response:
    """`GET url`."""
    return request("GET", url, headers=headers)


def post(
    url: str,
    *,
    body: Body = None,
    json: Any = None,
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """`POST url` with `body` (bytes or text) or `json` (any JSON value)."""
    return request("POST", url, body=body, json=json, headers=headers)


def request(
    method: str,
    url: str,
    *,
    body: Body = None,
    json: Any = None,
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """Sends `method url` and waits for the whole response.

    `body` is bytes or text (sent as UTF-8); `json` is encoded and sent with
    `content-type: application/json` unless `headers` names one. Only
    `http` and `https` URLs are accepted. `content-length` is set from the
    body; `host` comes from the URL (the host refuses it as a header).
    Raises `WeftError("http_failed", …)` when no response arrives.
    """
    method = method.upper()
    if json is not None:
        if body is not None:
            raise ValueError("give either body or json, not both")
        body = _json.dumps(json)
    payload = body.encode() if isinstance(body, str) else body
    fields: List[Tuple[str, bytes]] = []
    for name, value in (headers or {}).items():
        fields.append((name.lower(), value if isinstance(value, bytes) else str(value).encode()))
    names = {name for name, _ in fields}
    if json is not None and "content-type" not in names:
        fields.append(("content-type", b"application/json"))
    if payload is not None and "content-length" not in names:
        fields.append(("content-length", str(len(payload)).encode()))

    parts = urlsplit(url)
    # Errors name the URL without its credentials, if it has any: the
    # journal keeps every error.
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    what = f"{method} {shown}"
    schemes = {"http": wasi.Scheme_Http(), "https": wasi.Scheme_Https()}
    if parts.scheme.lower() not in schemes or not parts.netloc:
        raise WeftError(
            "http_failed", f"{what}: only absolute http:// and https:// URLs can be fetched",
            {"url": shown},
        ).permanent()

    try:
        header_fields = wasi.Fields.from_list(fields)
    except Err as e:
        raise WeftError(
            "http_failed", f"{what}: a request header is invalid or not allowed ({_name(e.value)})",
            {"url": shown, "reason": _name(e.value)},
        ).permanent()
    outgoing = wasi.OutgoingRequest(header_fields)
    try:
        outgoing.set_method(_METHODS[method]() if method in _METHODS else wasi.Method_Other(method))
        outgoing.set_scheme(schemes[parts.scheme.lower()])
        outgoing.set_authority(parts.netloc)
        outgoing.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    except Err:
        # The host checks each part; it says only that one is invalid
        # (a method with spaces, credentials in the authority, ...).
        outgoing.__exit__(None, None, None)
        raise WeftError(
            "http_failed", f"{what}: the method or URL cannot be sent as written", {"url": shown},
        ).permanent()
    # The body resource has to be taken before `handle` consumes the
    # request, and written after it: the host reads the body while it
    # sends, so a large body written first could fill its buffer and wait
    # forever.
    outgoing_body = outgoing.body() if payload is not None else None

    try:
        future = outgoing_handler.handle(outgoing, None)
    except Err as e:
        raise _failure(what, shown, e.value)
    write_error = None
    if outgoing_body is not None and payload is not None:
        write_error = _write_body(outgoing_body, payload)
    response = _await(future, what, shown)
    if write_error is not None:
        # The response came although the body did not go out whole.
        response.__exit__(None, None, None)
        raise WeftError("http_failed", f"{what}: sending the body failed: {write_error}",
                        {"url": shown})
    try:
        return _read(response, what, shown)
    finally:
        response.__exit__(None, None, None)


def _write_body(outgoing_body: "wasi.OutgoingBody", payload: bytes) -> Optional[str]:
    """Writes and finishes the body; a failure is returned, not raised, so
    the caller can report the response's error (often the real cause)."""
    problem = None
    stream = outgoing_body.write()
    try:
        for start in range(0, len(payload), _WRITE_CHUNK):
            stream.blocking_write_and_flush(payload[start:start + _WRITE_CHUNK])
    except Err as e:
        problem = _stream_problem(e.value)
    finally:
        # The stream is a child of the body: it must go before `finish`.
        stream.__exit__(None, None, None)
    try:
        wasi.OutgoingBody.finish(outgoing_body, None)
    except Err as e:
        problem = problem or _name(e.value)
    return problem


def _await(future: "wasi.FutureIncomingResponse", what: str, url: str) -> "wasi.IncomingResponse":
    """Blocks on `wasi:io/poll` until the response's head (or its error)
    arrives."""
    try:
        with future.subscribe() as ready:
            ready.block()
        got = future.get()
    finally:
        future.__exit__(None, None, None)
    if got is None or isinstance(got, Err):
        raise WeftError("http_failed", f"{what}: the host gave no response", {"url": url})
    if isinstance(got.value, Err):
        raise _failure(what, url, got.value.value)
    return got.value.value


def _read(response: "wasi.IncomingResponse", what: str, url: str) -> Response:
    status = response.status()
    headers: Dict[str, str] = {}
    with response.headers() as fields:
        for name, value in fields.entries():
            name = name.lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
    chunks = []
    incoming = response.consume()
    stream = incoming.stream()
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(_READ_CHUNK))
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break
                code = wasi.http_error_code(e.value.value)
                if code is not None:
                    raise _failure(what, url, code, "reading the body")
                raise WeftError("http_failed", f"{what}: reading the body failed: "
                                f"{_stream_problem(e.value)}", {"url": url})
    finally:
        stream.__exit__(None, None, None)
        wasi.IncomingBody.finish(incoming).__exit__(None, None, None)
    return Response(status, headers, b"".join(chunks))


def _failure(what: str, url: str, code: Any, during: str = "") -> WeftError:
    """The `WeftError` for a `wasi:http` error code."""
    reason = _name(code)
    if isinstance(code, wasi.ErrorCode_HttpRequestDenied):
        host = urlsplit(url).netloc
        message = (f"{what}: request denied: {host} is not on this module's allow-list "
                   f"(deploy it with --allow-host {host})")
    else:
        detail = getattr(code, "value", None)
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", reason).lower()
        message = f"{what}: {during + ': ' if during else ''}{words}"
        if detail is not None:
            message += f" ({detail})"
    error = WeftError("http_failed", message, {"url": url, "reason": reason})
    return error.permanent() if isinstance(code, _PERMANENT) else error


def _stream_problem(e: Any) -> str:
    if isinstance(e, streams.StreamError_LastOperationFailed):
        return e.value.to_debug_string()
    return "the stream was closed"


def _name(value: Any) -> str:
    """`ErrorCode_HttpRequestDenied` → `HttpRequestDenied`."""
    return type(value).__name__.split("_", 1)[-1]
