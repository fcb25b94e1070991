"""What request handlers need, built once per process and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from relayflow.clock import Clock, SystemClock
from relayflow.config import Settings
from relayflow.services.accounts import AccountService
from relayflow.services.definitions import DefinitionService
from relayflow.store.database import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        self.accounts = AccountService(self.db, self.clock)
        self.definitions = DefinitionService(self.db, self.clock, self.settings.limits)


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context
