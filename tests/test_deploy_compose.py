"""deploy/compose.yaml and deploy/prometheus.yml, checked as files (no container engine here):
PostgreSQL 15 with a healthcheck, a one-shot `relayflow db upgrade` the others wait for, two
API processes and two workers that relayflow's CLI and Settings accept as written, secrets only
from the environment, and Prometheus scraping exactly those four processes.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs pinned; not needed

from relayflow.config import Settings
from relayflow.store.database import async_url
from tests.support.deploy_cli import resolve, unknown_variables
from tests.support.deploy_parsing import interpolate, interpolations

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus.yml"
ENV_EXAMPLE = DEPLOY / "env.example"
# What an operator puts in deploy/.env; only ever read through `${NAME:?...}` interpolation.
SECRETS = {"POSTGRES_PASSWORD": "pg-password-0123456789", "RELAYFLOW_SECRET_KEY": "k" * 32}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(interpolate(COMPOSE.read_text(), SECRETS))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    """The file as written, before interpolation."""
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def _relayflow(compose: dict[str, Any], *words: str) -> dict[str, dict[str, Any]]:
    """The services whose command starts with `relayflow <words>`."""
    prefix = ["relayflow", *words]
    return {
        name: service
        for name, service in compose["services"].items()
        if _command(service)[: len(prefix)] == prefix
    }


def _run_as(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment of the service, with nothing of this test process's."""
    for name in [n for n in os.environ if n.startswith("RELAYFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in _environment(service).items():
        monkeypatch.setenv(name, value)


def _seconds(duration: str) -> float:
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?", duration)
    assert duration, "empty duration"
    assert parts is not None, f"not a compose duration: {duration!r}"
    h, m, s, ms = (int(p or 0) for p in parts.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def test_postgres_15_with_a_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:15(\.\d+)*(-\w+)?", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_one_shot_upgrade_that_every_relayflow_process_waits_for(
    compose: dict[str, Any],
) -> None:
    (upgrade,) = _relayflow(compose, "db", "upgrade").items()
    name, service = upgrade
    assert service.get("restart") == "no"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    others = {n: s for n, s in _relayflow(compose).items() if n != name}
    assert len(others) == 4
    for other, service in others.items():
        depends = service["depends_on"]
        assert depends[name]["condition"] == "service_completed_successfully", other
        assert depends["postgres"]["condition"] == "service_healthy", other
        assert service.get("restart") not in (None, "no"), other


def test_every_relayflow_service_runs_the_image_of_this_repository(
    compose: dict[str, Any],
) -> None:
    services = _relayflow(compose)
    assert len({s["image"] for s in services.values()}) == 1
    for name, service in services.items():
        build = service["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT, name
        assert (ROOT / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_two_api_processes_on_different_host_ports(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    apis = _relayflow(compose, "api")
    assert len(apis) == 2
    host_ports = set()
    for name, service in apis.items():
        _run_as(service, monkeypatch)
        _, params = resolve(_command(service))
        assert params["host"] == "0.0.0.0", name
        (mapping,) = service["ports"]
        *_, host, container = str(mapping).split(":")
        assert int(container) == params["port"], name
        host_ports.add(host)
    assert len(host_ports) == 2


def test_two_workers_serve_metrics_to_the_compose_network(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = _relayflow(compose, "worker")
    assert len(workers) == 2
    for name, service in workers.items():
        _run_as(service, monkeypatch)
        _, params = resolve(_command(service))
        assert "RELAYFLOW_METRICS_PORT" in _environment(service), name
        assert params["metrics_port"] is not None, f"{name}: set RELAYFLOW_METRICS_PORT"
        assert params["metrics_port"] == Settings().metrics_port, name
        assert params["host"] == "0.0.0.0", f"{name}: Prometheus cannot reach 127.0.0.1"
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        compile(test[3], "<healthcheck>", "exec")
        assert f":{params['metrics_port']}/healthz" in test[3], name


def test_settings_accept_every_relayflow_service_environment(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres = compose["services"]["postgres"]["environment"]
    for name, service in _relayflow(compose).items():
        _run_as(service, monkeypatch)
        settings = Settings()
        url = async_url(settings.database_url)
        assert url.drivername == "postgresql+asyncpg", name
        assert (url.host, url.username, url.password, url.database) == (
            "postgres",
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        ), name
        assert settings.secret_key is not None, name


def test_secrets_come_only_from_the_environment(raw_compose: dict[str, Any]) -> None:
    required = {name for name, op, _ in interpolations(COMPOSE.read_text()) if op == ":?"}
    assert set(SECRETS) <= required
    for service in raw_compose["services"].values():
        for key, value in _environment(service).items():
            if re.search(r"SECRET|PASSWORD", key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), f"{key} is written in"
            if key == "RELAYFLOW_DATABASE_URL":
                assert re.fullmatch(r"postgresql://\w+:\$\{\w+:\?[^}]+\}@.+", value), value
    with pytest.raises(KeyError):
        interpolate(COMPOSE.read_text(), {})
    example = dict(
        line.partition("=")[::2]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(example) == required
    assert all(value == "" for value in example.values()), "env.example holds no secret"


def test_stop_grace_period_outlasts_the_shutdown_grace(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in _relayflow(compose).items():
        _run_as(service, monkeypatch)
        assert "RELAYFLOW_SHUTDOWN_GRACE_SECONDS" in _environment(service), name
        grace = Settings().shutdown_grace_seconds
        assert _seconds(service["stop_grace_period"]) > grace, name


def test_compose_names_only_real_commands_settings_and_options(
    compose: dict[str, Any],
) -> None:
    assert unknown_variables(COMPOSE.read_text()) == set()
    assert unknown_variables(ENV_EXAMPLE.read_text()) == set()
    for service in _relayflow(compose).values():
        resolve(_command(service))


def test_prometheus_scrapes_exactly_the_api_and_worker_processes(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    scraped = {
        (target, job.get("metrics_path", "/metrics"))
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = set()
    for name, service in _relayflow(compose, "api").items():
        _run_as(service, monkeypatch)
        expected.add((f"{name}:{resolve(_command(service))[1]['port']}", "/metrics"))
    for name, service in _relayflow(compose, "worker").items():
        _run_as(service, monkeypatch)
        expected.add((f"{name}:{resolve(_command(service))[1]['metrics_port']}", "/metrics"))
    assert scraped == expected
    prometheus = compose["services"]["prometheus"]
    mounts = [str(v).split(":") for v in prometheus["volumes"]]
    assert any((DEPLOY / m[0]).resolve() == PROMETHEUS for m in mounts if m[0].startswith("."))
