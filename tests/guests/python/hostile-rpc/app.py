"""An RPC module that misbehaves on request, one function per misdeed: the
host must end each attempt with its named code and keep serving others."""

import os

from weft import http, rpc


def loop(call: rpc.Call, _input: object) -> None:
    while True:
        pass


def alloc(call: rpc.Call, _input: object) -> None:
    hoard = []
    while True:
        hoard.append(bytearray(b"\x01" * (16 << 20)))


def env(call: rpc.Call, _input: object) -> dict:
    """What the module can see of the host's environment."""
    return dict(os.environ)


def read_file(call: rpc.Call, req: dict) -> str:
    """A file of the host's, by path: the sandbox has no files to open."""
    with open(req["path"]) as f:
        return f.read()


def get(call: rpc.Call, req: dict) -> dict:
    """Outbound HTTP: reaches only the hosts the module was deployed with."""
    response = http.get(req["url"])
    return {"status": response.status, "body": response.text()}


WitWorld = rpc.functions(
    {"loop": loop, "alloc": alloc, "env": env, "read-file": read_file, "get": get}
)
