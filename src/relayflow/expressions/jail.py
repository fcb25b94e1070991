"""The QuickJS-NG jail that runs `{{ }}` expressions (spec/tech-stack-measurements.md §1).

Expressions run in a FROZEN realm (DESIGN.md §5: "a fresh or frozen realm"): each thread keeps
one long-lived QuickJS context whose every intrinsic -- the global object, all built-in
constructors and prototypes, and the hidden ones (iterator, generator and async function
prototypes, %TypedArray%, %ThrowTypeError%) -- is frozen once, when the realm is made. `data`
and `step` are parsed from JSON afresh for every expression, so an expression can only change
objects that die with it: nothing it does is visible to the next one. Making a context and its
prelude costs ~0.3 ms; an evaluation in a warm realm costs a few microseconds, which is what
makes W4 (bench/) possible. A realm is replaced after a resource-limit failure, after
`REALM_RUNS` evaluations, or when a batch's expressions leave promise jobs behind.

Limits: 32 MB of memory, a 512 KB JavaScript stack and 0.5 s of CPU per expression run (the
clock restarts for every call into the context). The realm has no I/O globals and
`eval`/`Function` code generation is disabled.

Python helpers cannot be called from JavaScript while a time limit is set, so host helpers use a
memoised re-run: the JavaScript stub looks the call up in a memo keyed by
`[call sequence number, name, args]`; on a miss it records the key and aborts, Python computes
the result, adds it to the memo and runs the expression again. This is correct because
expressions are side-effect free (the whitelist enforces it); the sequence number makes
`[uuid(), uuid()]` two different UUIDs.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Literal

import _quickjs
import orjson

from relayflow.expressions.helpers import HelperError, call_helper, helper_arities

MEMORY_LIMIT_BYTES = 32 * 1024 * 1024
STACK_LIMIT_BYTES = 512 * 1024
TIME_LIMIT_SECONDS = 0.5
MAX_HOST_CALLS = 50
# Deeper results could not be stored: orjson refuses to serialise more than 254 levels.
MAX_RESULT_DEPTH = 100
# A realm is replaced after this many evaluations: bounds whatever a long-lived context
# accumulates that no limit covers (interned atoms, fragmentation).
REALM_RUNS = 20_000
# Compiled expressions kept per realm (the definitions' expressions repeat on every step).
COMPILED_PER_REALM = 1024
# Batches between two looks for promise jobs an expression left behind (see `has_left_jobs`).
JOB_CHECK_INTERVAL = 32

_TIMEOUT_MESSAGE = f"took longer than {round(TIME_LIMIT_SECONDS * 1000)} ms and was stopped"

# "value": the JSON-compatible result; "text": the string an interpolation inserts;
# "truthy": JavaScript truthiness (conditions).
Mode = Literal["value", "text", "truthy"]

# `define('isCountryCode', stub('isCountryCode', 2));` ...: one stub per Python helper.
_STUBS = "".join(
    f"define('{name}', stub('{name}', {arity}));\n" for name, arity in helper_arities().items()
)

# Evaluated once per context; returns the runner Python calls for every expression. Compiling
# JavaScript costs about 50 µs per kB here, so the prelude is terse and its comments live here:
# - hostCall: the memo/re-run protocol (module docstring). An expression that swallows the
#   abort still gets re-run, because `pending` is checked before its result.
# - stringContains: pure JavaScript, no re-run needed.
# - Code generation from strings is disabled: `Function` is reachable through `.constructor` of
#   any function (the whitelist only catches the literal name). The async and generator
#   function constructors (reachable from functions the whitelist refuses but the jail
#   alone would run) are disabled the same way.
# - Then every object reachable from the global object, and from the hidden intrinsics that
#   only instances lead to, is frozen (with its accessors and prototype chain), so no
#   expression can change what a later one reads (`Object.prototype.reply = 1`,
#   `Object.assign(Object.getPrototypeOf([].values()), ...)`). About 1 ms, once per realm.
#   The only intrinsic state freezing cannot stop is behind the accessors
#   Error.stackTraceLimit / Error.prepareStackTrace (QuickJS-NG keeps it in the context): the
#   runner puts both back before every expression.
# - Date reads the engine's clock, not the host's: `Date.now()`, `new Date()` and `Date()` give
#   `clockNow`, which the runner sets before every expression (the evaluating step's "now", so
#   flow tests in virtual time see virtual dates). `new Date(x, ...)` is the native one; the
#   native constructor stays out of reach (Date.prototype.constructor is the clock's Date).
# - Results: `join` builds a flat string (the binding cannot convert QuickJS "rope" strings,
#   which `+` makes of long strings), and text must be well-formed UTF-16 to reach Python.
#   'v' + JSON, 't' + text, or 'h' + the key of a host call to make first.
_PRELUDE = (
    r"""(function (global) {
'use strict';
const stringify = JSON.stringify, parse = JSON.parse, hasOwn = Object.prototype.hasOwnProperty;
const define = (name, value) => Object.defineProperty(global, name, {value});
let seq = 0, memo = null, pending = null;
const hostCall = (name, args) => {
  const key = stringify([seq++, name, args]);
  if (memo !== null && hasOwn.call(memo, key)) return memo[key];
  if (pending === null) pending = key;
  throw new Error('@@HOSTCALL@@');
};
const stub = (name, arity) => function (...args) {
  args.length = arity;
  return hostCall(name, args);
};
"""
    + _STUBS
    + r"""
const text = (name, value) => {
  const type = typeof value;
  if (type === 'string') return value;
  if (type === 'number' || type === 'boolean' || type === 'bigint') return String(value);
  throw new TypeError('stringContains: ' + name + ' must be a string');
};
define('stringContains', function stringContains(source, value, ignoreCase) {
  if (source === null || source === undefined) return false;
  if (ignoreCase != null && typeof ignoreCase !== 'boolean') {
    throw new TypeError('stringContains: ignoreCase must be true or false');
  }
  const haystack = text('source', source), needle = text('value', value);
  if (!ignoreCase) return haystack.includes(needle);
  return haystack.toLowerCase().includes(needle.toLowerCase());
});
const functionProto = Function.prototype;
const noCodeGeneration = function () {
  throw new EvalError('code generation from strings is disabled');
};
[functionProto, Object.getPrototypeOf(function* () {}), Object.getPrototypeOf(async () => {}),
  Object.getPrototypeOf(async function* () {})].forEach((proto) =>
  Object.defineProperty(proto, 'constructor', {value: noCodeGeneration}));
// Native loops that never check the time limit (join, reverse, ...) walk `length`, which a
// sparse `Array(n)` or an array-like makes huge for free: cap both before freezing.
const MAX_LENGTH = 1e6, NativeArray = Array, arrayProto = Array.prototype;
const ARRAY_LIMIT = '@@ARRAY_LIMIT@@';
const tooLong = () => new RangeError(ARRAY_LIMIT + MAX_LENGTH);
const checkLength = (target) => {
  if (Number(target == null ? 0 : target.length) > MAX_LENGTH) throw tooLong();
};
['join', 'reverse', 'toString', 'toLocaleString', 'lastIndexOf', 'indexOf', 'includes',
 'copyWithin', 'fill', 'every', 'some', 'forEach', 'map', 'filter', 'reduce', 'reduceRight',
 'find', 'findIndex', 'findLast', 'findLastIndex', 'sort', 'toSorted', 'toReversed', 'with',
 'flat', 'flatMap', 'keys', 'values', 'entries', 'at', 'slice', 'splice', 'concat',
].forEach((name) => {
  const native = arrayProto[name];
  if (typeof native !== 'function') return;
  Object.defineProperty(arrayProto, name, {value: function (...args) {
    checkLength(this);
    return native.apply(this, args);
  }, writable: false, configurable: false});
});
const CappedArray = function Array(...args) {
  if (args.length === 1 && typeof args[0] === 'number' && args[0] > MAX_LENGTH) throw tooLong();
  return NativeArray(...args);
};
CappedArray.isArray = NativeArray.isArray;
CappedArray.from = NativeArray.from;
CappedArray.of = NativeArray.of;
CappedArray.prototype = arrayProto;
Object.defineProperty(global, 'Array', {value: CappedArray, writable: false, configurable: false});
const NativeDate = Date;
let clockNow = NaN;
const ClockDate = function Date(...args) {
  if (new.target === undefined) return String(new NativeDate(clockNow));
  return args.length === 0 ? new NativeDate(clockNow) : new NativeDate(...args);
};
ClockDate.prototype = NativeDate.prototype;
ClockDate.now = function now() { return clockNow; };
ClockDate.parse = NativeDate.parse;
ClockDate.UTC = NativeDate.UTC;
Object.defineProperty(NativeDate.prototype, 'constructor', {value: ClockDate});
Object.defineProperty(global, 'Date', {value: ClockDate, writable: false, configurable: false});
delete global.eval;
delete global.Function;
// The host's clock by another name: dates come from the engine's clock only (virtual in tests).
delete global.performance;
const protoOf = Object.getPrototypeOf, describe = Object.getOwnPropertyDescriptor;
const errorSettings = ['stackTraceLimit', 'prepareStackTrace'].map((key) => describe(Error, key))
  .filter((property) => property && property.get && property.set)
  .map((property) => [property.set, property.get.call(Error)]);
const resetErrorSettings = () => errorSettings.forEach(([set, value]) => set.call(Error, value));
const hidden = [
  [].values(), ''[Symbol.iterator](), new Map().entries(), new Set().values(),
  /a/[Symbol.matchAll]('a'), [].values().map(Boolean), Iterator.from({next: null}),
  function* () {}, function* () {}(), async function () {}, async function* () {},
  async function* () {}(), async () => {}, Promise.resolve(), (function () { return arguments; })(),
  NativeDate,
];
const seen = new Set(), todo = [global, ...hidden];
while (todo.length > 0) {
  const item = todo.pop();
  if ((typeof item !== 'object' && typeof item !== 'function') || item === null) continue;
  if (seen.has(item)) continue;
  seen.add(item);
  Object.freeze(item);
  todo.push(protoOf(item));
  for (const key of Reflect.ownKeys(item)) {
    const property = describe(item, key);
    if (property) todo.push(property.value, property.get, property.set);
  }
}
const replacer = (key, value) => (typeof value === 'bigint' ? value.toString() : value);
const toJson = (value) => stringify(value, replacer) ?? 'null';
const toText = (value) => {
  if (value == null) return '';
  const type = typeof value;
  if (type === 'string') return value;
  if (type === 'object') return toJson(value);
  return type === 'function' || type === 'symbol' ? '' : String(value);
};
return function run(fn, data, step, mode, memoJson, nowMs) {
  seq = 0;
  clockNow = nowMs;
  pending = null;
  resetErrorSettings();
  memo = memoJson ? parse(memoJson) : null;
  let value, failed = false, failure;
  try {
    value = fn(data, step);
  } catch (error) {
    failed = true;
    failure = error;
  }
  if (pending !== null) return ['h', pending].join('');
  if (failed) throw failure;
  if (mode === 'truthy') return value ? 'vtrue' : 'vfalse';
  if (mode === 'text') return ['t', toText(value).toWellFormed()].join('');
  return ['v', toJson(value)].join('');
};
})(globalThis)
"""
)


class JailError(Exception):
    """An expression failed. `message` is for humans; the subclass says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScriptError(JailError):
    """The expression threw (TypeError, ReferenceError, SyntaxError, ...)."""


class HostCallError(JailError):
    """A helper function rejected its arguments, or too many helper calls were made."""


class ResourceLimitError(JailError):
    """The expression hit the time, memory or stack limit."""


class _Realm:
    """One thread's long-lived frozen QuickJS context: the prelude, the runner, compiled code."""

    def __init__(self, time_limit: float) -> None:
        context = _quickjs.Context()
        context.set_memory_limit(MEMORY_LIMIT_BYTES)
        context.set_max_stack_size(STACK_LIMIT_BYTES)
        context.set_time_limit(TIME_LIMIT_SECONDS)  # the prelude needs ~1 ms, whatever `time_limit`
        try:
            self._runner = context.eval(_PRELUDE)
        except (_quickjs.JSException, _quickjs.StackOverflow) as error:
            raise _classify(error) from None
        context.set_time_limit(time_limit)
        self._context = context
        self._compiled: dict[str, Any] = {}
        self.runs = 0
        self._closes = 0

    def call(
        self, source: str, data_json: str, step_json: str, mode: Mode, memo: str, now_ms: float
    ) -> str:
        """Run one expression on fresh copies of `data` and `step`, with `Date` reading `now_ms`;
        raise QuickJS errors."""
        self.runs += 1
        function = self._compile(source)
        data = self._context.parse_json(data_json)
        step = self._context.parse_json(step_json)
        result: str = self._runner(function, data, step, mode, memo, now_ms)
        return result

    def has_left_jobs(self) -> bool:
        """Whether expressions queued promise jobs (one of them runs to find out).

        Jobs run only when asked to, so a pending one cannot affect later expressions, but it
        would hold memory in a long-lived realm: a realm that has any is replaced (expressions
        have no use for promises). Looking costs ~5 µs, so it is done every
        `JOB_CHECK_INTERVAL` batches; the memory limit bounds what piles up in between.
        """
        self._closes += 1
        if self._closes % JOB_CHECK_INTERVAL:
            return False
        try:
            return bool(self._context.execute_pending_job())
        except (_quickjs.JSException, _quickjs.StackOverflow):
            return True

    def _compile(self, source: str) -> Any:
        function = self._compiled.get(source)
        if function is None:
            if len(self._compiled) >= COMPILED_PER_REALM:
                self._compiled.clear()
            wrapper = "(function (data, step) {\n'use strict';\nreturn (" + source + "\n);\n})"
            function = self._compiled[source] = self._context.eval(wrapper)
        return function


_local = threading.local()


def _realms() -> dict[float, _Realm]:
    """This thread's realms, one per time limit."""
    realms: dict[float, _Realm] | None = getattr(_local, "realms", None)
    if realms is None:
        realms = _local.realms = {}
    return realms


def _realm(time_limit: float) -> _Realm:
    """This thread's realm for `time_limit`, made on first use."""
    realms = _realms()
    realm = realms.get(time_limit)
    if realm is None or realm.runs >= REALM_RUNS:
        realm = realms[time_limit] = _Realm(time_limit)
    return realm


def warm_realm(time_limit: float = TIME_LIMIT_SECONDS) -> None:
    """Make this thread's realm for `time_limit` now (~5 ms), so no expression pays for it."""
    _realm(time_limit)


def realm_ready(time_limit: float = TIME_LIMIT_SECONDS) -> bool:
    """Whether this thread has a usable realm for `time_limit` (no ~5 ms set-up needed)."""
    realm = _realms().get(time_limit)
    return realm is not None and realm.runs < REALM_RUNS


def _discard_realm(time_limit: float) -> None:
    _realms().pop(time_limit, None)


class Jail:
    """Evaluates expressions against one `data`/`step` snapshot in this thread's frozen realm.

    Use it on the thread that created it. Every `run` sees `data` and `step` as they were given,
    whatever an earlier run did to its own copies. A resource-limit failure replaces the
    thread's realm, so a memory bomb cannot starve the expressions after it.
    """

    def __init__(
        self,
        data: Any,
        step: Any,
        *,
        serialized: bool = False,
        time_limit: float = TIME_LIMIT_SECONDS,
        now_ms: int | None = None,
    ) -> None:
        """`serialized=True`: `data` and `step` are already JSON text (see `to_json`).

        `time_limit`: CPU seconds per expression (the default is the documented 0.5 s; a
        shorter one serves callers that retry elsewhere with the full limit).
        `now_ms`: what `Date.now()` and `new Date()` return, in UTC epoch ms (the engine passes
        its clock's time, so flow tests in virtual time see virtual dates); None: the host's
        time when the jail is made, the same for every expression it runs.
        """
        self._thread = threading.get_ident()
        self._data_json = data if serialized else to_json(data)
        self._step_json = step if serialized else to_json(step)
        self._time_limit = time_limit
        # A float: the binding turns Python ints into 32-bit JavaScript integers.
        self._now_ms = float(wall_clock_ms() if now_ms is None else now_ms)
        self._timeout_message = f"took longer than {round(time_limit * 1000)} ms and was stopped"

    def close(self) -> None:
        """End the batch: replace the realm if expressions left promise jobs behind."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("a Jail must be used on the thread that created it")
        realm = _realms().get(self._time_limit)
        if realm is not None and realm.has_left_jobs():
            _discard_realm(self._time_limit)

    def __enter__(self) -> Jail:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, source: str, mode: Mode = "value") -> Any:
        """Evaluate one expression; raise a `JailError` subclass when it fails.

        "value" returns JSON-compatible Python (`undefined` and NaN become None, BigInt a
        string), "text" the string an interpolation inserts, "truthy" a bool.
        """
        if threading.get_ident() != self._thread:
            raise RuntimeError("a Jail must be used on the thread that created it")
        if _has_lone_surrogate(source):
            raise ScriptError("SyntaxError: the expression contains an unpaired surrogate")
        memo: dict[str, Any] = {}
        started = time.perf_counter()
        while True:
            realm = _realm(self._time_limit)
            try:
                result = realm.call(
                    source,
                    self._data_json,
                    self._step_json,
                    mode,
                    json.dumps(memo) if memo else "",
                    self._now_ms,
                )
            except (_quickjs.JSException, _quickjs.StackOverflow) as error:
                failure = _classify(error, self._timeout_message)
                if isinstance(failure, ResourceLimitError) and failure.message != (
                    self._timeout_message
                ):
                    # Out of memory or stack: a fresh context for what comes next. (An
                    # interrupt unwinds cleanly and the realm has nothing shared to corrupt.)
                    _discard_realm(self._time_limit)
                raise failure from None
            tag, body = result[0], result[1:]
            if tag == "t":
                return body
            if tag == "v":
                return _loads(body)
            if len(memo) >= MAX_HOST_CALLS:
                raise HostCallError(f"more than {MAX_HOST_CALLS} helper function calls")
            if time.perf_counter() - started > self._time_limit:  # the limit spans re-runs
                raise ResourceLimitError(self._timeout_message)
            memo[body] = _host_call(body)


def wall_clock_ms() -> int:
    """The host's time in UTC epoch ms: `Date`'s "now" when the caller gives none."""
    return time.time_ns() // 1_000_000


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def to_json(value: Any) -> str:
    """JSON text for the jail: NaN/Infinity become null, as JSON.stringify would do."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # ints beyond 64 bits or lone surrogates (json.loads makes both)
        return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def _loads(body: str) -> Any:
    too_deep = ScriptError(f"the result is nested deeper than {MAX_RESULT_DEPTH} levels")
    try:
        value = json.loads(body)
    except RecursionError:
        raise too_deep from None
    if body.count("[") + body.count("{") > MAX_RESULT_DEPTH and _depth(value) > MAX_RESULT_DEPTH:
        raise too_deep
    # JSON.stringify escapes lone surrogates (`\ud800`); Python strings holding them cannot be
    # encoded as UTF-8 later, so replace them with U+FFFD like `toWellFormed()` does.
    return _well_formed(value) if "\\ud" in body else value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in _children(item))
    return deepest


def _children(container: dict[str, Any] | list[Any]) -> Any:
    return container.values() if isinstance(container, dict) else container


def _well_formed(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed(item) for key, item in value.items()}
    return value


def _host_call(key: str) -> Any:
    try:
        _, name, args = json.loads(key)
    except RecursionError:
        raise HostCallError("helper function arguments are nested too deeply") from None
    try:
        return call_helper(name, args)
    except HelperError as error:
        raise HostCallError(str(error)) from None
    except Exception as error:  # a helper bug must fail one expression, not the whole step batch
        raise HostCallError(f"{name}: {type(error).__name__}: {error}") from None


def _classify(error: Exception, timeout_message: str = _TIMEOUT_MESSAGE) -> JailError:
    if isinstance(error, _quickjs.StackOverflow):
        return ResourceLimitError("stack overflow (too much recursion)")
    text = str(error)
    first = text.split("\n", 1)[0].strip()
    if first.startswith("InternalError: interrupted"):
        return ResourceLimitError(timeout_message)
    if "out of memory" in first or first == "null":
        # QuickJS throws a bare `null` when it cannot even allocate the exception object.
        return ResourceLimitError(f"exceeded {MEMORY_LIMIT_BYTES // (1024 * 1024)} MB of memory")
    if first.startswith("RangeError: @@ARRAY_LIMIT@@"):
        limit = first.removeprefix("RangeError: @@ARRAY_LIMIT@@")
        return ResourceLimitError(f"exceeded the limit of {limit} array elements")
    if first.startswith("RangeError: Maximum call stack size exceeded"):
        return ResourceLimitError("stack overflow (too much recursion)")
    return ScriptError(first or "unknown error")
