"""Start the fake 8x8 server as a child process and drive its control API from tests.

    with Fake8x8(api_keys=["k1"]) as fake:       # or: yield from running_fake() in a fixture
        fake.urls.sms                             # base URL of the "SMS host"
        fake.fail("sms", "429", count=2, retry_after=1)
        fake.outage("crm", "503", seconds=1)      # every crm request fails for a second
        ...                                       # relayflow sends to fake.urls.sms
        fake.requests(role="sms")                 # what it received, with the answer status
        await fake.aio.inbound_sms(url, "+6591234567", "+6560000000", "hi", "sub-1")

Every control call exists twice with the same signature: sync on `Fake8x8` (httpx), async on
`fake.aio`. Use the async form from a test whose webhook receiver runs in the same event loop
(a sync call would block the loop the receiver needs). Control errors raise `ControlError`.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
# The control site is plain http on loopback; `verify=False` only skips loading the CA bundle,
# which costs ~50-100 ms per httpx client.
DEFAULT_API_KEY = "fake8x8-test-key"
R = TypeVar("R")


class ControlError(RuntimeError):
    """The control API refused a call (4xx): bad arguments, unknown umid or session."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Urls:
    """Base URLs of the five sites (no trailing slash); `crm` is the generic JSON site standing
    for a customer's CRM (any method, any path, no auth)."""

    sms: str
    chatapps: str
    voice: str
    crm: str
    control: str


def _options(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise ControlError(response.status_code, message)
    return response.json()


class ControlCalls(Generic[R]):
    """The control API, written once; `_call` makes it sync (R = Any) or async (awaitable)."""

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> R:
        raise NotImplementedError

    def health(self) -> R:
        return self._call("GET", "/health")

    def requests(self, role: str | None = None, status: int | None = None) -> R:
        """Recorded requests, oldest first: id, receivedAt, role, method, path, query,
        subAccountId, headers (Authorization → '***' + last 4), body, status, answer, fault."""
        query = urlencode(_options(role=role, status=status))
        return self._call("GET", "/requests" + (f"?{query}" if query else ""))

    def sent_webhooks(self) -> R:
        return self._call("GET", "/webhooks")

    def faults(self) -> R:
        return self._call("GET", "/faults")

    def reset(self) -> R:
        return self._call("POST", "/reset")

    def fail(
        self,
        role: str = "*",
        mode: str = "500",
        count: int = 1,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> R:
        """The next `count` requests of `role` fail: 500 | 503 | 429 | slow | drop | lost | 401 |
        400. `retry_after` sets 429's Retry-After (1 unless given) and gives 503 one."""
        spec = _options(role=role, mode=mode, count=count, retryAfter=retry_after, delay=delay)
        return self._call("POST", "/fail", spec)

    def fail_rate(
        self,
        rate: float,
        modes: Iterable[str] = ("500",),
        role: str = "*",
        seed: int | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> R:
        """Fail a random `rate` of `role`'s requests (seeded: reproducible); rate 0 = off."""
        spec = _options(
            role=role, rate=rate, modes=list(modes), seed=seed, retryAfter=retry_after, delay=delay
        )
        return self._call("POST", "/fail-rate", spec)

    def outage(
        self,
        role: str = "*",
        mode: str = "503",
        seconds: float | None = None,
        retry_after: float | None = None,
    ) -> R:
        """Every request of `role` fails with `mode` (any but slow) for `seconds`, or until
        `end_outage()`; wins over counted rules and rates without using them up."""
        spec = _options(role=role, mode=mode, seconds=seconds, retryAfter=retry_after)
        return self._call("POST", "/outage", spec)

    def end_outage(self) -> R:
        """End every outage now."""
        return self._call("DELETE", "/outage")

    def add_key(self, api_key: str) -> R:
        return self._call("POST", "/keys", {"apiKey": api_key})

    def set_subaccounts(self, ids: Iterable[str]) -> R:
        """Only these subaccounts exist from now on; `[]` accepts any valid id again."""
        return self._call("POST", "/subaccounts", {"ids": list(ids)})

    # Webhooks. `options` are extra control fields, spelled as in the control API (camelCase):
    # headers, retries (seconds, e.g. [1, 10]), timeout, and the builder's optional fields.

    def webhook(self, url: str, body: dict[str, Any], **options: Any) -> R:
        return self._call("POST", "/webhook", {"url": url, "body": body, **options})

    def inbound_sms(
        self, url: str, from_: str, to: str, text: str, sub_account_id: str, **options: Any
    ) -> R:
        spec = {"url": url, "from": from_, "to": to, "text": text, "subAccountId": sub_account_id}
        return self._call("POST", "/webhook/inbound-sms", {**spec, **options})

    def inbound_chat(
        self,
        url: str,
        from_: str,
        sub_account_id: str,
        text: str | None = None,
        channel: str = "whatsapp",
        version: int = 2,
        **options: Any,
    ) -> R:
        """`options`: payload, interactive, location, mediaUrl, type, channelId, channelUserId,
        name, username, replyToUmid."""
        spec = _options(
            url=url,
            subAccountId=sub_account_id,
            text=text,
            channel=channel,
            version=version,
            **options,
        )
        spec["from"] = from_
        return self._call("POST", "/webhook/inbound-chat", spec)

    def sms_receipt(self, umid: str, state: str, url: str | None = None, **options: Any) -> R:
        """`options`: detail, errorCode, errorMessage. `url` defaults to the dlrCallbackUrl."""
        spec = _options(umid=umid, state=state, url=url, **options)
        return self._call("POST", "/webhook/sms-receipt", spec)

    def chat_receipt(
        self, umid: str, state: str, url: str | None = None, version: int = 8, **options: Any
    ) -> R:
        """`options`: detail, channel, errorCode, errorMessage, whatsapp."""
        spec = _options(umid=umid, state=state, url=url, version=version, **options)
        return self._call("POST", "/webhook/chat-receipt", spec)

    def dtmf(
        self,
        digits: str,
        client_request_id: str | None = None,
        uid: str | None = None,
        url: str | None = None,
        **options: Any,
    ) -> R:
        """Legacy DTMF callback; `url` defaults to the recorded call's dtmfCallbackUrl."""
        spec = _options(
            digits=digits, clientRequestId=client_request_id, uid=uid, url=url, **options
        )
        return self._call("POST", "/webhook/dtmf", spec)

    def voice_call_action(self, url: str, session_id: str, digits: str | None, **options: Any) -> R:
        """`options`: eventId, callId, clientActionId, callStatus, callDuration."""
        spec = {"url": url, "sessionId": session_id, "digits": digits, **options}
        return self._call("POST", "/webhook/voice-call-action", spec)

    def session_summary(
        self, url: str, session_id: str, status: str = "COMPLETED", **options: Any
    ) -> R:
        spec = {"url": url, "sessionId": session_id, "status": status, **options}
        return self._call("POST", "/webhook/session-summary", spec)


class AsyncControl(ControlCalls[Awaitable[Any]]):
    """Async control calls; one short-lived httpx client per call, so any event loop works."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Awaitable[Any]:
        return self._send(method, path, body)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        async with httpx.AsyncClient(base_url=self._base_url, timeout=120, verify=False) as http:
            return _answer(await http.request(method, path, json=body))


class Fake8x8(ControlCalls[Any]):
    """The fake as a child process, with the sync control calls; see the module docstring."""

    def __init__(
        self,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        subaccounts: Iterable[str] = (),
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self.api_keys = list(api_keys)
        self._args = [f"--host={host}"]
        self._args += [f"--{role}-port={port}" for role, port in (ports or {}).items()]
        self._args += [f"--api-key={key}" for key in self.api_keys]
        self._args += [f"--subaccount={sub}" for sub in subaccounts]
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._http: httpx.Client | None = None
        self._urls: Urls | None = None
        self.pid: int | None = None
        self._final_log = ""

    @property
    def api_key(self) -> str:
        return self.api_keys[0] if self.api_keys else DEFAULT_API_KEY

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def urls(self) -> Urls:
        if self._urls is None:
            raise RuntimeError("the fake 8x8 server is not started")
        return self._urls

    @property
    def aio(self) -> AsyncControl:
        return AsyncControl(self.urls.control)

    def start(self) -> Fake8x8:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "fake8x8", *self._args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        try:
            announced = json.loads(self._read_line())
        except BaseException:
            self.stop()
            raise
        self.pid = announced.pop("pid")
        self._urls = Urls(**announced)
        self._http = httpx.Client(base_url=self._urls.control, timeout=120, verify=False)
        return self

    def _read_line(self) -> str:
        """The JSON line the server prints once it listens, within `startup_timeout`."""
        assert self._process is not None
        assert self._process.stdout is not None
        deadline, buffer = time.monotonic() + self._startup_timeout, b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise RuntimeError(f"fake 8x8 did not start in time:\n{self.log()}")
                chunk = os.read(self._process.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"fake 8x8 exited while starting:\n{self.log()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode()

    def log(self) -> str:
        """What the server wrote to stderr so far (tracebacks, if any)."""
        if self._stderr is None or self._stderr.closed:
            return self._final_log
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; safe to call twice."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None and not self._stderr.closed:
            self._final_log = self.log()
            self._stderr.close()

    def __enter__(self) -> Fake8x8:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._http is None:
            raise RuntimeError("the fake 8x8 server is not started")
        return _answer(self._http.request(method, path, json=body))


def running_fake(**options: Any) -> Iterator[Fake8x8]:
    """For pytest fixtures: `yield from running_fake(api_keys=["k"])` starts and stops one."""
    with Fake8x8(**options) as fake:
        yield fake
