"""Failures the fake can be told to inject, so retry and fault paths can be tested for real.

Two kinds: counted rules (`/fail`: the next N matching requests fail one way, first rule first)
and a seeded random rate per role (`/fail-rate`). Counted rules win over the rate. With the
same seed and the same sequence of requests the random draws are the same, so fault-injection
tests are reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

MODES = ("500", "429", "slow", "drop", "401", "400")
ROLES = ("sms", "chatapps", "voice")


class FaultError(ValueError):
    """A control request describing a fault the fake cannot inject."""


@dataclass(frozen=True)
class Fault:
    """One injected failure: `mode`, plus `retry_after` (429) and `delay` (slow) in seconds."""

    mode: str
    retry_after: int = 1
    delay: float = 2.0


@dataclass
class _Counted:
    role: str
    fault: Fault
    remaining: int


@dataclass
class _Rate:
    rate: float
    modes: tuple[str, ...]
    rng: random.Random
    retry_after: int
    delay: float


def _role(value: Any) -> str:
    role = "*" if value is None else value
    if role != "*" and role not in ROLES:
        raise FaultError(f"role must be one of {', '.join(ROLES)} or '*'")
    return str(role)


def _mode(value: Any) -> str:
    mode = str(value)
    if mode not in MODES:
        raise FaultError(f"mode must be one of {', '.join(MODES)}")
    return mode


def _timing(spec: dict[str, Any]) -> tuple[int, float]:
    retry_after, delay = spec.get("retryAfter", 1), spec.get("delay", 2.0)
    if not isinstance(retry_after, int | float) or retry_after < 0:
        raise FaultError("retryAfter must be a number of seconds >= 0")
    if not isinstance(delay, int | float) or delay < 0:
        raise FaultError("delay must be a number of seconds >= 0")
    return math.ceil(retry_after), float(delay)


class FaultPlan:
    """The faults still to inject; `take(role)` says how the next request of `role` fails."""

    def __init__(self) -> None:
        self._counted: list[_Counted] = []
        self._rates: dict[str, _Rate] = {}

    def clear(self) -> None:
        self._counted.clear()
        self._rates.clear()

    def add(self, spec: dict[str, Any]) -> None:
        """`{role, mode, count=1, retryAfter=1, delay=2}` from `POST /fail`."""
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultError("count must be an integer >= 1")
        retry_after, delay = _timing(spec)
        fault = Fault(_mode(spec.get("mode")), retry_after, delay)
        self._counted.append(_Counted(_role(spec.get("role")), fault, count))

    def set_rate(self, spec: dict[str, Any]) -> None:
        """`{role, rate, modes, seed?, retryAfter?, delay?}` (`POST /fail-rate`); rate 0 = off."""
        role, rate = _role(spec.get("role")), spec.get("rate")
        if not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise FaultError("rate must be a number from 0 to 1")
        if rate == 0:
            self._rates.pop(role, None)
            return
        modes = spec.get("modes") or ["500"]
        if not isinstance(modes, list):
            raise FaultError("modes must be a list")
        retry_after, delay = _timing(spec)
        rng = random.Random(spec.get("seed"))
        self._rates[role] = _Rate(float(rate), tuple(map(_mode, modes)), rng, retry_after, delay)

    def take(self, role: str) -> Fault | None:
        for rule in self._counted:
            if rule.role in (role, "*"):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._counted.remove(rule)
                return rule.fault
        rate = self._rates.get(role) or self._rates.get("*")
        if rate is not None and rate.rng.random() < rate.rate:
            return Fault(rate.rng.choice(rate.modes), rate.retry_after, rate.delay)
        return None

    def describe(self) -> dict[str, Any]:
        """What is still pending, for `GET /faults`."""
        return {
            "counted": [
                {"role": rule.role, "mode": rule.fault.mode, "remaining": rule.remaining}
                for rule in self._counted
            ],
            "rates": {
                role: {"rate": rate.rate, "modes": list(rate.modes)}
                for role, rate in self._rates.items()
            },
        }
