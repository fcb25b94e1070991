"""Identifier formats of the 8x8 API, generated in one place so tests can seed them.

Every id the engine makes comes from here. Normally they are random; inside `seeded_ids(seed)`
or `ids_from(generator)` (flow tests: `relayflow test`, `FlowEnvironment`) they come from a
seeded generator for the current task and its child tasks (a context variable), so a flow
test's transcript, ids included, is the same on every run, while other tasks (a server's
requests) are unaffected.
"""

from __future__ import annotations

import contextlib
import random
import re
import secrets
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

_SEEDED: ContextVar[random.Random | None] = ContextVar("relayflow_seeded_ids", default=None)


@contextlib.contextmanager
def ids_from(generator: random.Random) -> Iterator[None]:
    """Ids made in this context (and tasks started from it) come from `generator`; a flow
    test keeps one generator for its whole life, whichever task runs its next action."""
    token = _SEEDED.set(generator)
    try:
        yield
    finally:
        _SEEDED.reset(token)


def seeded_ids(seed: int) -> contextlib.AbstractContextManager[None]:
    """Ids made in this context (and tasks started from it) follow `seed`."""
    return ids_from(random.Random(seed))  # noqa: S311 - reproducible test ids, not secrets


def _random_bytes(count: int) -> bytes:
    seeded = _SEEDED.get()
    return seeded.randbytes(count) if seeded is not None else secrets.token_bytes(count)


def new_uuid() -> str:
    """A version-4 UUID string (random, or seeded inside `seeded_ids`)."""
    return str(uuid.UUID(bytes=_random_bytes(16), version=4))


_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def new_definition_id() -> str:
    return new_uuid()


def new_error_id() -> str:
    return new_uuid()


def new_workflow_id() -> str:
    """24 lower-case hex characters, the shape of 8x8's (MongoDB ObjectId-like) workflow ids."""
    return _random_bytes(12).hex()


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.fullmatch(value))


def normalise_uuid(value: str) -> str:
    """Canonical lower-case form, so `ABC...` and `abc...` name the same definition."""
    return value.lower()
