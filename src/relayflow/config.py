"""All settings in one place: CLI flags override `RELAYFLOW_*` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./relayflow.db"


class Limits(BaseModel):
    """Guard rails (DESIGN.md §5). One home so the validator, API and engine agree."""

    max_steps_per_definition: int = 500
    max_expression_length: int = 1000
    max_request_body_bytes: int = 1024 * 1024
    max_page_size: int = 500
    default_page_size: int = 100


class Settings(BaseSettings):
    """Process settings. Environment: `RELAYFLOW_DATABASE_URL`, `RELAYFLOW_LOG_LEVEL`, ..."""

    model_config = SettingsConfigDict(env_prefix="RELAYFLOW_", env_nested_delimiter="__")

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    # Log SQL statements (never parameters: they may hold secrets).
    echo_sql: bool = False
    # PostgreSQL connections per process: a pool this size plus this much overflow, a second
    # pool of `db_pool_size` for the hot path (the engine's claims and saves, the router's
    # one-statement route), and one LISTEN connection where the engine runs: at most 25 per process.
    # No overflow by default: an overflow connection is opened for a burst and closed after
    # it, and each costs a backend fork and type introspection (bench/RESULTS.md).
    db_pool_size: int = Field(default=12, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # How long a request or sprint waits for a free pooled connection before it gives up
    # (the API then answers 503 + Retry-After instead of queueing without bound).
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    limits: Limits = Field(default_factory=Limits)
    # How long a console sign-in lasts (the cookie's and the stored session's lifetime).
    console_session_seconds: float = Field(default=12 * 3600, ge=60)
    # Encrypts 8x8 API keys at rest and signs callback URLs; required once an account uses 8x8.
    secret_key: SecretStr | None = None
    # Where 8x8 can reach this service (for the DTMF callback URL of say&capture calls).
    public_url: str | None = None
    # Comma-separated hosts / CIDRs the HttpRequest step may reach although they are private.
    http_allowlist: str = ""
    # Instance starts per second per account (token bucket), and the burst allowed.
    start_rate_per_second: float = 200.0
    start_burst: int = 1000
    # Reported by GET /usage; None = no quota.
    allowed_workflow_count: int | None = None
    # Reply hold (engine/router.py): a message that no wait takes is held this long for the
    # sender's instance still running the steps before its WaitForReply, instead of starting
    # another instance; 0 disables.
    reply_hold_seconds: float = Field(default=5.0, ge=0)
    # Worker: instances leased per claim, run concurrently, and the lease length.
    worker_batch_size: int = 32
    worker_concurrency: int = 32
    worker_lease_seconds: float = 60.0
    worker_poll_seconds: float = 0.25
    # Transient failures of a send or an HttpRequest (connection errors, timeouts, 429, 5xx)
    # are retried with exponential backoff from 1 s up to this interval, until this long has
    # passed since the step's first attempt.
    retry_max_interval_seconds: float = Field(default=300.0, ge=1)
    retry_window_seconds: float = Field(default=3600.0, ge=0)
    # Circuit breaker per endpoint: opens after this many consecutive transient failures,
    # probes at most this often once open, and lets the backlog back in at this many sends
    # per second, doubling every second.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_probe_max_seconds: float = Field(default=30.0, ge=1)
    breaker_drain_rate: float = Field(default=10.0, gt=0)
    # Prometheus /metrics of a `relayflow worker` process (serve and api answer it on their own
    # port): None = no metrics server.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Ended instances (Complete or Terminated) older than this many days are purged with their
    # logs, events, messages and receipts; 0 keeps everything.
    retention_days: float = Field(default=30.0, ge=0)
    # The worker purges this many instances per transaction, at most this often.
    # 50 holds SQLite's writer ~15 ms at a million instances (bench/RESULTS.md, "Operations").
    retention_batch_size: int = Field(default=50, ge=1, le=10_000)
    retention_interval_seconds: float = Field(default=60.0, gt=0)
    # On SIGTERM: stop taking new work, finish in-flight requests and sprints within this long,
    # release leases, exit 0.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    # /readyz answers 503 when the worker loop has not come round for this long, or when work
    # has been due and unclaimed for this long.
    ready_max_lag_seconds: float = Field(default=30.0, gt=0)
