"""The composition root: one place builds the services, engine and channels of a process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from relayflow.channels.base import ChannelSet
from relayflow.channels.breaker import BreakerPolicy, Breakers
from relayflow.channels.http import Allowlist, GuardedHttpClient
from relayflow.channels.providers import AccountProviders
from relayflow.clock import Clock, SystemClock
from relayflow.config import Settings
from relayflow.engine.evaluation import StepExpressions
from relayflow.engine.retry import RetryPolicy
from relayflow.engine.router import Router, StartRateLimiter
from relayflow.engine.runner import Runner
from relayflow.engine.wakeup import PostgresListener
from relayflow.engine.worker import Worker, WorkerSettings
from relayflow.expressions.evaluate import ExpressionEvaluator
from relayflow.secretbox import SecretBox
from relayflow.services.accounts import AccountService
from relayflow.services.definitions import DefinitionService
from relayflow.services.instances import InstanceService
from relayflow.services.messages import MessageService
from relayflow.services.monitoring import EngineHealth, MonitoringService
from relayflow.services.operations import OperatorActions
from relayflow.services.providers import ProviderService
from relayflow.services.retention import RetentionService
from relayflow.services.sandbox import SandboxService
from relayflow.services.sessions import SessionService
from relayflow.services.usage import UsageService
from relayflow.services.webhooks import WebhookService
from relayflow.store.database import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    channels: ChannelSet | None = None

    def __post_init__(self) -> None:
        settings = self.settings
        # Set when the process starts stopping: long-lived responses (a console page's live
        # stream) end at once instead of holding the shutdown up.
        self.stopping = asyncio.Event()
        self.evaluator = ExpressionEvaluator(
            max_expression_length=settings.limits.max_expression_length
        )
        self.breakers = Breakers(
            self.clock,
            BreakerPolicy(
                failure_threshold=settings.breaker_failure_threshold,
                probe_max_s=settings.breaker_probe_max_seconds,
                drain_rate=settings.breaker_drain_rate,
            ),
        )
        self.http = GuardedHttpClient(Allowlist.parse(settings.http_allowlist), self.breakers)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        self.secretbox = SecretBox(secret) if secret else None
        self.providers = AccountProviders(
            self.db, self.secretbox, settings.public_url, self.breakers
        )
        if self.channels is None:
            self.channels = ChannelSet(providers=self.providers, http=self.http)
        self.runner = Runner(
            StepExpressions(self.evaluator),
            self.channels,
            self.clock,
            retry=RetryPolicy(
                max_interval_s=settings.retry_max_interval_seconds,
                window_s=settings.retry_window_seconds,
            ),
        )
        self.worker = Worker(
            self.db,
            self.runner,
            self.clock,
            WorkerSettings(
                lease_ms=int(settings.worker_lease_seconds * 1000),
                batch_size=settings.worker_batch_size,
                concurrency=settings.worker_concurrency,
                poll_interval_s=settings.worker_poll_seconds,
                shutdown_grace_s=settings.shutdown_grace_seconds,
            ),
        )
        limiter = StartRateLimiter(settings.start_rate_per_second, settings.start_burst)
        self.router = Router(
            self.db,
            self.clock,
            limiter,
            on_work=self.worker.wake,
            reply_hold_ms=int(settings.reply_hold_seconds * 1000),
        )
        self.worker.release_held = self.router.release_held  # held replies, once due
        self.accounts = AccountService(self.db, self.clock)
        self.sessions = SessionService(
            self.db, self.clock, self.accounts, settings.console_session_seconds
        )
        self.definitions = DefinitionService(self.db, self.clock, settings.limits)
        self.instances = InstanceService(self.db, self.clock, self.router)
        # Bulk actions and retry: built here so no route reaches the store or the router.
        self.operations = OperatorActions(self.db, self.clock, self.router)
        self.messages = MessageService(self.db)
        self.usage = UsageService(self.db, self.clock, settings.allowed_workflow_count)
        self.sandbox = SandboxService(self.db, self.clock, self.router)
        self.webhooks = WebhookService(self.db, self.clock, self.router)
        self.provider_settings = ProviderService(
            self.db, self.clock, self.secretbox, self.providers
        )
        self.retention = RetentionService.from_settings(self.db, self.clock, settings)
        # Set while this process runs the engine (`serve`, `worker`): readiness then checks it.
        self.engine_task: asyncio.Task[None] | None = None
        self.monitoring = MonitoringService(
            self.db, self.clock, settings.ready_max_lag_seconds, self.engine_health
        )

    def engine_health(self) -> EngineHealth | None:
        """The worker loop's health, or None when this process does not run the engine."""
        task = self.engine_task
        if task is None:
            return None
        return EngineHealth(
            running=not task.done(), seconds_since_heartbeat=self.worker.seconds_since_heartbeat()
        )

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Run this process's worker until `stop`; sprints under way then get
        `RELAYFLOW_SHUTDOWN_GRACE_SECONDS` and the worker's leases are released (worker.py)."""
        self.engine_task = asyncio.current_task()
        listener = (
            PostgresListener(self.db.url, self.worker.wake) if not self.db.is_sqlite else None
        )
        if listener is not None:
            await listener.start()
        # Retention runs beside the worker, in the same loop: one batch per transaction.
        retention = asyncio.create_task(self.retention.run_forever(stop))
        try:
            await self.worker.run_forever(stop)
        finally:
            stop.set()
            await retention
            if listener is not None:
                await listener.stop()

    async def close(self) -> None:
        self.evaluator.close()
        await self.http.close()
        await self.providers.close()
        await self.db.dispose()
