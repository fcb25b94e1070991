"""The HttpRequest step's client: one shared aiohttp session behind an SSRF guard.

User-defined URLs come from strangers, so every address is checked *after* DNS resolution:
only globally routable addresses are reachable unless `RELAYFLOW_HTTP_ALLOWLIST` names the
host or network. Redirects are not followed (a 3xx is a result the flow can branch on), so a
public URL cannot bounce the request to an internal one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from relayflow.channels.base import (
    ChannelError,
    HttpResult,
    is_transient_status,
    retry_after_seconds,
)
from relayflow.channels.breaker import Breakers
from relayflow.telemetry import tracing

MAX_RESPONSE_BYTES = 1024 * 1024
BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Allowlist:
    """Hosts and networks the guard lets through although they are not public."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: list[IpNetwork] = []
        self.hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    @classmethod
    def parse(cls, setting: str) -> Allowlist:
        return cls(setting.split(","))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks)


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class BlockedAddress(OSError):
    pass


class GuardedResolver(AbstractResolver):
    """Resolves like the system, then drops every address the guard forbids."""

    def __init__(self, allowlist: Allowlist) -> None:
        self._inner = ThreadedResolver()
        self._allowlist = allowlist

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allowlist.allows_host(host):
            return results
        allowed = [
            result
            for result in results
            if is_public(ipaddress.ip_address(result["host"]))
            or self._allowlist.allows_address(ipaddress.ip_address(result["host"]))
        ]
        if not allowed:
            raise BlockedAddress(f"'{host}' resolves only to private or reserved addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class GuardedHttpClient:
    """`HttpRequester` for the HttpRequest step."""

    def __init__(self, allowlist: Allowlist, breakers: Breakers) -> None:
        self._allowlist = allowlist
        self._breakers = breakers
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._session is None or self._session.closed:
                connector = aiohttp.TCPConnector(
                    resolver=GuardedResolver(self._allowlist), limit=100, limit_per_host=10
                )
                self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
            return self._session

    def check_url(self, url: str) -> str:
        """Reject what the resolver cannot see: bad schemes and literal IP addresses."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ChannelError(f"'{url}' is not an absolute http(s) URL.")
        host = parts.hostname
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return host
        if not is_public(literal) and not self._allowlist.allows_address(literal):
            raise ChannelError(f"Requests to {host} are not allowed (private or reserved address).")
        return host

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, str],
        json_body: Any,
        timeout_s: float,
    ) -> HttpResult:
        self.check_url(url)
        parts = urlsplit(url)  # the breaker's key: scheme, host and port, never credentials
        endpoint = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"
        async with self._breakers.guard(endpoint) as call:
            # The span names the endpoint only: a URL's path and query may carry secrets.
            attributes = {"http.request.method": method.upper(), "server.address": endpoint}
            with tracing.client_span(f"HTTP {method.upper()}", attributes):
                result = await self._send(method, url, headers, params, json_body, timeout_s)
            if is_transient_status(result.status):
                call.failed(f"{endpoint} answered {result.status}", result.retry_after_s)
        if call.failure is not None:
            resume = self._breakers.resume_before_s(endpoint)
            return dataclasses.replace(result, resume_before_s=resume)
        return result

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, str],
        json_body: Any,
        timeout_s: float,
    ) -> HttpResult:
        method = method.upper()
        send_headers, data = outgoing(method, headers, json_body)
        tracing.inject(send_headers)  # the callee continues this instance's trace
        session = await self._client()
        try:
            async with session.request(
                method,
                url,
                headers=send_headers,
                params=params or None,
                data=data,
                # Without a body aiohttp labels POST/PUT/PATCH `application/octet-stream`;
                # skipping the automatic header keeps one the step set itself.
                skip_auto_headers=("Content-Type",) if data is None else None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise ChannelError(f"Response from {url} is larger than 1 MB.")
                return HttpResult(
                    response.status,
                    response.reason or "",
                    decode_body(raw),
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
        except BlockedAddress as error:
            raise ChannelError(f"Request to {url} is not allowed: {error}.") from None
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, BlockedAddress):
                raise ChannelError(f"Request to {url} is not allowed: {error.os_error}.") from None
            # No connection was made: nothing was sent, so any method may be tried again.
            raise ChannelError(f"Call failed. {error}", transient=True, sent=False) from None
        except TimeoutError:
            raise ChannelError(
                f"Call failed. {url} did not answer within {timeout_s:g} s.", transient=True
            ) from None
        except aiohttp.ClientError as error:
            raise ChannelError(
                f"Call failed. {error or type(error).__name__}", transient=True
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def outgoing(
    method: str, headers: dict[str, str], json_body: Any
) -> tuple[dict[str, str], bytes | None]:
    """The headers and body an HttpRequest sends: GET/HEAD/DELETE/OPTIONS send no body, a
    JSON body gets `Content-Type: application/json` unless the step set one."""
    send_headers = dict(headers)
    if method.upper() in BODYLESS_METHODS or json_body is None:
        return send_headers, None
    if not any(key.lower() == "content-type" for key in send_headers):
        send_headers["Content-Type"] = "application/json"
    return send_headers, orjson.dumps(json_body)


def decode_body(raw: bytes) -> Any:
    """`responseBody`: parsed JSON whatever the Content-Type, else the text, None if empty."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")
