"""Structured JSON logs (structlog). Secrets are never passed to a logger: API keys are
referred to by their public key id, and SQL is logged without parameters."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


class _CurrentStderr:
    """The process's stderr as it is at each write: a test runner that swaps `sys.stderr` for
    a command and closes it afterwards must not leave every later log line failing."""

    def write(self, data: bytes) -> None:
        stream = sys.stderr
        target = getattr(stream, "buffer", None)
        if target is not None:
            target.write(data)
        else:
            stream.write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
    # Alembic narrates every migration step at INFO; only its warnings matter to operators.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
