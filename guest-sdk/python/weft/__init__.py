"""Write durable Weft workflows in Python.

The same shape as the Rust SDK: a workflow is a function of a context and a
JSON input; every effect is a step (an RPC, an inline block, a durable sleep,
a wait for an event), started at once or fanned out and joined, whose outcome the host records and hands back on replay. Between steps the
code must be deterministic; `time.time()`, `random` and friends already read
the run's logical clock and seeded randomness.

The `random` module keeps its own generator, seeded once per process; a draw
inside a step body that replay skips would shift every later draw. So the
context reseeds it from the host at every journal position (the start of the
run, each step's result, each step body's attempt): what `random` returns
between two steps depends only on the run and where in the journal it is.
`os.urandom`, `secrets` and `uuid.uuid4` read the host's random source
directly, which the host keys the same way.

    import weft

    def checkout(ctx: weft.Context, order: dict) -> dict:
        total = ctx.step("total", lambda: order["cents"] + 499)
        receipt = ctx.rpc("charge", "payments/charge", {"order": order["id"], "cents": total})
        ctx.sleep("cool-off", 5000)
        ctx.info(f"charged {receipt['chargeId']}")
        return receipt

    WitWorld = weft.workflow(checkout)

Build: `weft build` in a project made by `weft new <name> --lang python`
(the module `app` defines `WitWorld`). RPC step functions are written with
`weft.rpc`.
"""

import json
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional

import wit_world
from componentize_py_types import Err, Ok

try:
    from wit_world.imports import types
except ImportError:
    # A Python RPC module's world (`weft:http-client/rpc`) also imports
    # `wasi:http/types`; componentize-py then names both after their
    # packages.
    from wit_world.imports import weft_workflow_types as types  # type: ignore[no-redef]

try:
    from wit_world.imports import steps
except ImportError:
    # An RPC module's world (`weft.rpc`) has no `steps`: the names below
    # that need it are for workflows only, and are never called there.
    steps = None  # type: ignore[assignment]


@dataclass
class Started:
    """A step started without waiting (a fan-out member); its name is the handle."""
    name: str


@dataclass
class Finished:
    """A member's outcome: `index` in the list it was awaited from, and
    either `value` (`ok`) or `error`."""
    index: int
    ok: bool
    value: Any
    error: Optional["WeftError"]


@dataclass
class Joined:
    """What `join_until` saw: outcomes in the order they finished, and
    whether the rule was met."""
    finished: list
    satisfied: bool


class WeftError(Exception):
    """A failure with a machine-readable code, as the host records it."""

    def __init__(self, code: str, message: str, details: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def permanent(self) -> "WeftError":
        """Marks the error as not worth retrying."""
        # Details that are not an object are kept under "value", as the
        # Rust SDK keeps them.
        if isinstance(self.details, dict):
            details = dict(self.details)
        else:
            details = {} if self.details is None else {"value": self.details}
        details["retryable"] = False
        self.details = details
        return self

    def to_wire(self) -> types.Error:
        details = None if self.details is None else json.dumps(self.details)
        return types.Error(code=self.code, message=self.message, details=details)

    @staticmethod
    def from_wire(e: types.Error) -> "WeftError":
        details = None
        if e.details is not None:
            try:
                details = json.loads(e.details)
            except ValueError:
                details = e.details
        return WeftError(e.code, e.message, details)


def _as_weft_error(e: BaseException) -> WeftError:
    return e if isinstance(e, WeftError) else WeftError("error", str(e))


@dataclass
class RetryPolicy:
    """How a failing step is retried (defaults: the host's)."""

    max_attempts: int = 3
    initial_delay_ms: int = 1000
    backoff_factor: float = 2.0
    max_delay_ms: int = 60000
    jitter: float = 0.1


def _options(retry: Optional[RetryPolicy], timeout_ms: Optional[int]) -> types.StepOptions:
    wire_retry = None
    if retry is not None:
        wire_retry = types.RetryPolicy(
            max_attempts=retry.max_attempts,
            initial_delay_ms=retry.initial_delay_ms,
            backoff_factor=float(retry.backoff_factor),
            max_delay_ms=retry.max_delay_ms,
            jitter=float(retry.jitter),
        )
    return types.StepOptions(retry=wire_retry, timeout_ms=timeout_ms)


_LEVELS = {
    "trace": types.LogLevel.TRACE,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


def _reseed() -> None:
    """Restarts `random` from the host's stream for the current journal
    position (see the module doc)."""
    random.seed(steps.random())


class Context:
    """A workflow's handle on the host."""

    def __init__(self) -> None:
        self._used: dict = {}
        _reseed()

    def _unique(self, name: str) -> str:
        """Step names must be unique in a run: repeats get `#2`, `#3`..."""
        n = self._used.get(name, 0) + 1
        self._used[name] = n
        return name if n == 1 else f"{name}#{n}"

    def rpc(self, step: str, rpc_name: str, input: Any, retry: Optional[RetryPolicy] = None,
            timeout_ms: Optional[int] = None) -> Any:
        """Calls RPC `module/function`; returns its result or raises its WeftError."""
        name = self._unique(step)
        try:
            result = steps.call_rpc(name, rpc_name, json.dumps(input), _options(retry, timeout_ms))
        except Err as e:
            _reseed()
            raise WeftError.from_wire(e.value) from None
        _reseed()
        return json.loads(result)

    def step(self, name: str, fn: Callable[[], Any], retry: Optional[RetryPolicy] = None) -> Any:
        """Runs `fn()` once as an inline step; its result is recorded and
        returned on replay without calling `fn`. Raising retries it."""
        return self.step_with_attempt(name, lambda _attempt: fn(), retry)

    def step_with_attempt(self, name: str, fn: Callable[[int], Any],
                          retry: Optional[RetryPolicy] = None) -> Any:
        """Like `step`, but `fn` learns which attempt it is (from 1)."""
        step_name = self._unique(name)
        answer = steps.begin_step(step_name, _options(retry, None))
        while True:
            _reseed()
            if isinstance(answer, steps.InlineStart_Recorded):
                if isinstance(answer.value, Ok):
                    return json.loads(answer.value.value)
                raise WeftError.from_wire(answer.value.value)
            try:
                outcome = Ok(json.dumps(fn(answer.value)))
            except Exception as e:  # the step's failure is its outcome
                outcome = Err(_as_weft_error(e).to_wire())
            answer = steps.complete_step(step_name, outcome)

    def sleep(self, name: str, ms: int) -> None:
        """Sleeps durably for `ms` milliseconds."""
        steps.sleep(self._unique(name), max(0, int(ms)))
        _reseed()

    def wait_event(self, step: str, event: str, timeout_ms: Optional[int] = None) -> Any:
        """Waits for the next event `event` sent to this run and returns its
        payload. Events wait in the run's inbox until a wait takes them,
        oldest first and one per wait. With `timeout_ms`, raises a WeftError
        with code `timeout` if none came within that long of this step being
        first reached; a later event stays for the next wait of its name."""
        name = self._unique(step)
        timeout = None if timeout_ms is None else max(0, int(timeout_ms))
        try:
            payload = steps.wait_event(name, event, timeout)
        except Err as e:
            _reseed()
            raise WeftError.from_wire(e.value) from None
        _reseed()
        return json.loads(payload)

    def create_callback(self, step: str, timeout_ms: Optional[int] = None) -> str:
        """Creates a callback and returns its token, for another system to
        complete once with `POST /v1/callbacks/{token}`. With `timeout_ms`
        it expires that long after this step. Replays return the same token."""
        timeout = None if timeout_ms is None else max(0, int(timeout_ms))
        token = steps.create_callback(self._unique(step), timeout)
        _reseed()
        return token

    def await_callback(self, step: str, token: str) -> Any:
        """Waits until the callback with `token` is completed; returns its
        result or raises the WeftError it was completed with (`timeout` if
        it expired)."""
        name = self._unique(step)
        try:
            result = steps.await_callback(name, token)
        except Err as e:
            _reseed()
            raise WeftError.from_wire(e.value) from None
        _reseed()
        return json.loads(result)

    # Fan-out. A start_* call records a step and sets it going without
    # waiting (the RPC goes to a worker, the timer runs) and returns a
    # `Started` handle to wait on later. No asyncio: a wait whose step has
    # not finished suspends the workflow, and the host replays it once the
    # step has finished. `gather`, `select`, `join_until` and `map_bounded`
    # play the parts of asyncio.gather and asyncio.wait.

    def start_rpc(self, step: str, rpc_name: str, input: Any, retry: Optional[RetryPolicy] = None,
                  timeout_ms: Optional[int] = None) -> "Started":
        """Starts RPC `module/function` like `rpc`, without waiting."""
        name = self._unique(step)
        steps.start_rpc(name, rpc_name, json.dumps(input), _options(retry, timeout_ms))
        _reseed()
        return Started(name)

    def start_sleep(self, step: str, ms: int) -> "Started":
        """Starts a durable timer of `ms` milliseconds (its outcome is None)."""
        name = self._unique(step)
        steps.start_sleep(name, max(0, int(ms)))
        _reseed()
        return Started(name)

    def start_wait_event(self, step: str, event: str, timeout_ms: Optional[int] = None) -> "Started":
        """Starts a wait for event `event`, like `wait_event`, without waiting."""
        name = self._unique(step)
        timeout = None if timeout_ms is None else max(0, int(timeout_ms))
        steps.start_event_wait(name, event, timeout)
        _reseed()
        return Started(name)

    def start_await_callback(self, step: str, token: str) -> "Started":
        """Starts a wait for the callback with `token`, without waiting."""
        name = self._unique(step)
        steps.start_callback_wait(name, token)
        _reseed()
        return Started(name)

    def start_child(self, step: str, workflow: str, input: Any) -> "Started":
        """Starts a run of deployed workflow `workflow` as a child of this
        run; `wait` gives its output or raises its error. It is cancelled if
        this run is cancelled or ends first."""
        name = self._unique(step)
        steps.start_child(name, workflow, json.dumps(input))
        _reseed()
        return Started(name)

    def child(self, step: str, workflow: str, input: Any) -> Any:
        """Runs workflow `workflow` as a child and returns its output."""
        return self.wait(self.start_child(step, workflow, input))

    def spawn_child(self, step: str, workflow: str, input: Any) -> str:
        """Starts a detached child (not awaited, not cancelled with this
        run) and returns its run id."""
        name = self._unique(step)
        try:
            run_id = steps.spawn_child(name, workflow, json.dumps(input))
        except Err as e:
            _reseed()
            raise WeftError.from_wire(e.value) from None
        _reseed()
        return run_id

    def wait(self, started: "Started") -> Any:
        """Waits for a started step; returns its result or raises its WeftError."""
        try:
            result = steps.await_step(started.name)
        except Err as e:
            raise WeftError.from_wire(e.value) from None
        return json.loads(result)

    def gather(self, started: list, return_exceptions: bool = False) -> list:
        """Like asyncio.gather: every result in the order given; the first
        failure in that order is raised, or returned in place with
        `return_exceptions`."""
        results = []
        for s in started:
            try:
                results.append(self.wait(s))
            except WeftError as e:
                if not return_exceptions:
                    raise
                results.append(e)
        return results

    def select(self, step: str, started: list) -> "Finished":
        """Waits for the first of `started` to finish. Which one it was is
        recorded as join step `step`, so a replay gets the same answer; the
        others keep running."""
        names = [s.name for s in started]
        first = steps.await_any(self._unique(step), names)
        _reseed()
        index = names.index(first) if first in names else 0
        try:
            return Finished(index, True, self.wait(started[index]), None)
        except WeftError as e:
            return Finished(index, False, None, e)

    def join_until(self, step: str, started: list, min_successes: Optional[int] = None,
                   max_failures: Optional[int] = None) -> "Joined":
        """Waits for members in the order they finish until `min_successes`
        succeeded (default: all) or more than `max_failures` failed."""
        wanted = len(started) if min_successes is None else min_successes
        open_ = list(range(len(started)))
        finished = []
        ok = failed = 0
        satisfied = ok >= wanted
        while not satisfied and open_:
            first = self.select(step, [started[i] for i in open_])
            index = open_.pop(first.index)
            finished.append(Finished(index, first.ok, first.value, first.error))
            if first.ok:
                ok += 1
            else:
                failed += 1
            if max_failures is not None and failed > max_failures:
                break
            satisfied = ok >= wanted
        if not open_ and (max_failures is None or failed <= max_failures):
            satisfied = satisfied or min_successes is None
        return Joined(finished, satisfied)

    def map_bounded(self, step: str, items: list, limit: int,
                    start: Callable[["Context", Any, int], "Started"]) -> list:
        """Starts `start(ctx, item, index)` for every item with at most
        `limit` in flight; returns the `Finished` outcomes in the items' order."""
        cap = max(1, int(limit))
        results: list = [None] * len(items)
        flying: list = []
        following = 0
        while True:
            while len(flying) < cap and following < len(items):
                flying.append((following, start(self, items[following], following)))
                following += 1
            if not flying:
                break
            first = self.select(step, [s for _, s in flying])
            index, _ = flying.pop(first.index)
            results[index] = Finished(index, first.ok, first.value, first.error)
        return results

    def now(self) -> int:
        """The run's logical time, in milliseconds since the epoch."""
        return steps.now()

    def random(self) -> int:
        """A random 64-bit number, identical on replay."""
        return steps.random()

    def log(self, level: str, message: str) -> None:
        steps.log(_LEVELS.get(level, types.LogLevel.INFO), str(message))

    def info(self, message: str) -> None:
        self.log("info", message)

    def warn(self, message: str) -> None:
        self.log("warn", message)

    def error(self, message: str) -> None:
        self.log("error", message)


def workflow(fn: Callable[[Context, Any], Any]) -> type:
    """Wraps `fn(ctx, input)` as the component's `WitWorld`: decodes the JSON
    input, encodes the output, and turns a raised error into the run's error."""

    class WitWorld(wit_world.WitWorld):
        def run(self, input: str) -> str:
            try:
                parsed = json.loads(input)
            except ValueError as e:
                raise Err(WeftError("invalid_input", f"the workflow input is not JSON: {e}").permanent().to_wire())
            try:
                return json.dumps(fn(Context(), parsed))
            except Err:
                raise
            except Exception as e:
                raise Err(_as_weft_error(e).to_wire())

    return WitWorld
