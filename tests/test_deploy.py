"""The container deliverables, checked as files (this machine has no container engine):
the Dockerfile and .dockerignore, the wheel the image installs, and the Grafana dashboard.
deploy/compose.yaml and deploy/prometheus.yml: tests/test_deploy_compose.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from relayflow.store.database import async_url
from tests.support.deploy_cli import resolve, unknown_variables
from tests.support.deploy_parsing import (
    DockerfileError,
    Stage,
    command_words,
    dockerignore_rules,
    env_pairs,
    is_ignored,
    parse_dockerfile,
    promql_labels,
    promql_metrics,
)
from tests.support.metric_series import SERIES, Series

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DASHBOARD = ROOT / "deploy" / "grafana" / "relayflow-dashboard.json"


SERIES_NAMES: tuple[str, ...] = tuple(series.name for series in SERIES)
EXPOSED: dict[str, Series] = {name: series for series in SERIES for name in series.exposed}


# --- the readers themselves ---------------------------------------------------------------


def test_dockerfile_reader_joins_continuations_and_refuses_what_docker_refuses() -> None:
    stages = parse_dockerfile(
        'ARG V=1\nFROM a AS b\n# note\nRUN one \\\n  # inside\n  two\nFROM c\nCMD ["x"]\n'
    )
    assert [(s.base, s.name) for s in stages] == [("a", "b"), ("c", None)]
    assert stages[0].instructions[0].args == "one two"
    for broken in ("RUN x\nFROM a\n", "FROM a\nRUNN x\n", "FROM a\nRUN x \\\n", "FROM a b\n"):
        with pytest.raises(DockerfileError):
            parse_dockerfile(broken)


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    rules = dockerignore_rules("*\n!src/\n**/__pycache__\n")
    assert is_ignored(".venv/bin/python", rules)
    assert not is_ignored("src/relayflow/cli.py", rules)
    assert is_ignored("src/relayflow/__pycache__/cli.pyc", rules)


def test_promql_reader_separates_metrics_from_functions_and_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(a_bucket{status=~"5.."}'
        "[$__rate_interval]))) / on (route) b"
    )
    assert promql_metrics(expr) == {"a_bucket", "b"}
    assert promql_labels(expr) == {"route", "le", "status"}


# --- Dockerfile -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_dockerfile_builds_wheels_in_one_stage_and_installs_them_in_a_slim_one(
    stages: list[Stage],
) -> None:
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert build.name
    assert runtime.base == "python:3.11-slim"
    assert any("pip wheel" in run.args for run in build.all("RUN"))
    takes_from_build = [
        i
        for i in runtime.instructions
        if i.flags.get("from") == build.name or f"from={build.name}" in i.flags.get("mount", "")
    ]
    assert takes_from_build, "the runtime stage takes nothing from the build stage"


def test_runtime_runs_as_a_user_it_creates_not_root(stages: list[Stage]) -> None:
    runtime = stages[-1]
    users = runtime.all("USER")
    assert users, "no USER in the final stage: the process would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    created = [
        words[-1]
        for run in runtime.all("RUN")
        for segment in re.split(r"&&|;", run.args)
        if (words := segment.split()) and words[0] in ("useradd", "adduser")
    ]
    assert user in created, f"USER {user} but the stage creates {created}"


def test_healthcheck_asks_healthz_with_the_standard_library(stages: list[Stage]) -> None:
    checks = stages[-1].all("HEALTHCHECK")
    assert len(checks) == 1
    keyword, _, command = checks[0].args.partition(" ")
    assert keyword == "CMD"
    words = command_words(command.strip())
    assert words[:2] == ["python", "-c"], "slim images have no curl: use python -c"
    compile(words[2], "<HEALTHCHECK>", "exec")
    assert "urllib.request" in words[2]
    assert "/healthz" in words[2]


def test_cmd_serves_on_all_interfaces_on_the_exposed_port_with_sqlite_in_the_volume(
    stages: list[Stage], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = stages[-1]
    environment = {k: v for env in runtime.all("ENV") for k, v in env_pairs(env.args).items()}
    for name in [n for n in os.environ if n.startswith("RELAYFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    (cmd,) = runtime.all("CMD")
    assert cmd.args.startswith("["), "exec form, so relayflow is PID 1 and gets SIGTERM"
    command, params = resolve(command_words(cmd.args))
    assert command.name == "serve"
    assert params["host"] == "0.0.0.0"
    exposed = {port.split("/")[0] for e in runtime.all("EXPOSE") for port in e.args.split()}
    assert str(params["port"]) in exposed
    volumes = {v for vol in runtime.all("VOLUME") for v in command_words(vol.args)}
    database = async_url(params["db"]).database
    assert database is not None
    assert any(Path(database).is_relative_to(volume) for volume in volumes), database


def test_dockerfile_names_only_real_settings_and_options() -> None:
    assert unknown_variables(DOCKERFILE.read_text()) == set()


# --- .dockerignore and the wheel --------------------------------------------------------------


def _build_context(stages: list[Stage], into: Path) -> list[str]:
    """Copy what the build stage's COPY instructions take, less what .dockerignore leaves out;
    returns the relative paths copied."""
    rules = dockerignore_rules(DOCKERIGNORE.read_text())
    copied: list[str] = []
    for copy in stages[0].all("COPY"):
        assert "from" not in copy.flags
        for source in command_words(copy.args)[:-1]:
            top = ROOT / source
            for path in [top] if top.is_file() else sorted(top.rglob("*")):
                relative = path.relative_to(ROOT).as_posix()
                if path.is_file() and not is_ignored(relative, rules):
                    (into / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, into / relative)
                    copied.append(relative)
    return copied


def test_dockerignore_keeps_the_sources_and_leaves_out_the_rest(stages: list[Stage]) -> None:
    rules = dockerignore_rules(DOCKERIGNORE.read_text())
    for copy in stages[0].all("COPY"):
        for source in command_words(copy.args)[:-1]:
            assert not is_ignored(source, rules), f"COPY {source} but .dockerignore drops it"
    assert not is_ignored("src/relayflow/console/templates/base.html", rules)
    for left_out in (".venv/bin/python", ".git/HEAD", "tests/test_deploy.py", "relayflow.db"):
        assert is_ignored(left_out, rules), left_out
    assert is_ignored("src/relayflow/__pycache__/cli.cpython-311.pyc", rules)


@pytest.mark.slow
def test_the_wheel_built_from_the_image_context_carries_console_assets_and_migrations(
    stages: list[Stage], tmp_path: Path
) -> None:
    context, out = tmp_path / "context", tmp_path / "wheels"
    copied = _build_context(stages, context)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(context), "-w", out],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("relayflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    package = [p.removeprefix("src/") for p in copied if p.startswith("src/relayflow/")]
    assert sorted(set(package) - names) == [], "in the source tree but not in the wheel"
    for folder in ("console/templates/", "console/static/", "store/migrations/versions/"):
        assert any(n.startswith(f"relayflow/{folder}") for n in names), folder
    assert "relayflow = relayflow.cli:main" in entry_points
    requires = {
        line.removeprefix("Requires-Dist: ").split(";")[0].replace(" ", "")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    }
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {pin.replace(" ", "") for pin in pins} <= requires


# --- Grafana dashboard --------------------------------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for panel in panels:
        flat.append(panel)
        flat.extend(_panels(panel.get("panels", [])))
    return flat


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document = json.loads(DASHBOARD.read_text())
    assert isinstance(document, dict)
    return document


def _targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (panel, target)
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def test_dashboard_imports_with_a_prometheus_datasource_input(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    (source,) = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    panels = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert panels
    assert len({p["id"] for p in _panels(dashboard["panels"])}) == len(_panels(dashboard["panels"]))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    for _, target in _targets(dashboard):
        assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_dashboard_queries_only_relayflow_series_and_their_labels(
    dashboard: dict[str, Any],
) -> None:
    for panel, target in _targets(dashboard):
        expr, where = target["expr"], f"{panel['title']}: {target['expr']}"
        metrics = promql_metrics(expr)
        assert metrics, where
        unknown = metrics - EXPOSED.keys()
        assert not unknown, f"{where}: not a relayflow series: {unknown}"
        series = [EXPOSED[m] for m in metrics]
        allowed = {label for s in series for label in s.labels}
        allowed |= {"le"} if any(m.endswith("_bucket") for m in metrics) else set()
        assert promql_labels(expr) <= allowed, where
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend <= promql_labels(expr), where
        for metric in metrics:
            counted = EXPOSED[metric].kind != "gauge"
            rated = re.search(rf"\b(?:rate|irate|increase)\({re.escape(metric)}\b", expr)
            assert bool(rated) == counted, f"{where}: rate() is for counters and histograms"
            if metric.endswith("_bucket"):
                assert "histogram_quantile(" in expr, where


def test_dashboard_charts_every_series(dashboard: dict[str, Any]) -> None:
    charted = {m for _, target in _targets(dashboard) for m in promql_metrics(target["expr"])}
    assert {EXPOSED[m].name for m in charted} == set(SERIES_NAMES)
