"""The CLI that drives a running relayflow (issue 14): `relayflow definitions …`,
`relayflow instances …` and `relayflow sandbox … --server`, over real HTTP against a real
`relayflow serve`, with the server, key and account from flags, the environment or a profile.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import fails_cleanly, flat, invoke, ok
from tests.support.processes import Processes, Server

pytestmark = pytest.mark.slow

FLOW = {
    "trigger": "http_request",
    "status": "enabled",
    "definition": {
        "name": "remote cli",
        "steps": [
            {
                "id": "nap",
                "stepType": "Wait",
                "inputs": {"duration": "00:00:01"},
                "nextStepId": "hello",
            },
            {
                "id": "hello",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "remote_sms",
                    "destination": "+6591234567",
                    "text": "Hello {{data.name}}",
                },
            },
        ],
    },
}


class Remote:
    """A served relayflow and the environment that points the CLI at it."""

    def __init__(self, server: Server, credentials: dict[str, Any]) -> None:
        self.server = server
        self.key = str(credentials["apiKey"])
        self.account = str(credentials["accountId"])
        self.env = {
            "RELAYFLOW_SERVER": server.base_url,
            "RELAYFLOW_API_KEY": self.key,
            "RELAYFLOW_ACCOUNT": self.account,
            "RELAYFLOW_PROFILE": "",
            "XDG_CONFIG_HOME": str(server.stdout_path.parent / "no-config"),
        }

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        return ok(invoke(*args, env={**self.env, **(env or {})}))

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"))


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    workdir = tmp_path_factory.mktemp("remote-cli")
    with Processes(workdir) as procs:
        server = procs.serve(f"sqlite:///{workdir / 'remote.db'}", "serve")
        server.wait_healthy(90)
        [credentials] = server.printed_json()
        yield Remote(server, credentials)


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(FLOW))
    return path


def test_definitions_push_list_get_pull_enable_disable_diff_delete(
    remote: Remote, flow_file: Path, tmp_path: Path
) -> None:
    pushed = json.loads(remote.run("definitions", "push", str(flow_file), "--json"))
    definition = pushed["id"]
    assert pushed["version"] == 1
    assert definition in [d["id"] for d in remote.json("definitions", "list")]
    assert "remote cli" in remote.run("definitions", "list")  # the table, for people

    assert f"{definition} disabled (version 2)" in remote.run("definitions", "disable", definition)
    assert "already disabled" in remote.run("definitions", "disable", definition)
    assert f"{definition} enabled (version 3)" in remote.run("definitions", "enable", definition)
    versions = remote.json("definitions", "get", definition)
    assert [(v["version"], v["status"]) for v in versions] == [
        (3, "enabled"),
        (2, "disabled"),
        (1, "enabled"),
    ]

    diff = remote.run("definitions", "diff", definition, "1", "2")
    assert '-  "status": "enabled",' in diff
    assert '+  "status": "disabled",' in diff
    assert "are the same" in remote.run("definitions", "diff", definition, "1", "3")

    pulled = tmp_path / "pulled.json"
    remote.run("definitions", "pull", definition, "-o", str(pulled))
    assert json.loads(pulled.read_text()) == FLOW  # what was pushed, round-tripped
    assert json.loads(remote.run("definitions", "pull", definition)) == FLOW

    changed = {**FLOW, "definition": {**FLOW["definition"], "name": "renamed"}}
    pulled.write_text(json.dumps(changed))
    again = json.loads(remote.run("definitions", "push", str(pulled), "--id", definition, "--json"))
    assert (again["id"], again["version"], again["definition"]["name"]) == (
        definition,
        4,
        "renamed",
    )

    assert "deleted" in remote.run("definitions", "delete", definition)
    result = invoke("definitions", "get", definition, env=remote.env)
    fails_cleanly(result, "no definition")


def wait_until(check: Any, deadline_s: float = 60.0) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail("timed out")


def start(remote: Remote, definition: str, name: str) -> str:
    import httpx

    response = httpx.post(
        f"{remote.server.base_url}/api/v1/accounts/{remote.account}/definitions/{definition}/workflows",
        headers={"Authorization": f"Bearer {remote.key}"},
        json={"name": name},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    workflow: str = response.json()["workflowId"]
    return workflow


def test_instances_list_show_follow_and_control(remote: Remote, flow_file: Path) -> None:
    definition = json.loads(remote.run("definitions", "push", str(flow_file), "--json"))["id"]
    workflow = start(remote, definition, "Ada")

    followed = remote.run("instances", "show", definition, workflow, "--follow")
    lines = followed.splitlines()
    timeline = [line.split()[1] for line in lines if line.startswith("  20")]
    assert timeline[0] == "instance_started", followed
    assert timeline[-1] == "instance_completed", followed
    assert "wait_started" in timeline
    assert timeline.count("step_completed") == 2
    assert lines[-1].startswith("Complete at ")

    listed = remote.json("instances", "list", definition, "--status", "Complete")
    assert [i["workflowId"] for i in listed] == [workflow]
    assert remote.json("instances", "list", definition, "--status", "Runnable") == []
    shown = json.loads(remote.run("instances", "show", definition, workflow, "--json"))
    assert shown["instance"]["status"] == "Complete"
    assert [log["stepName"] for log in shown["instance"]["logs"]] == ["nap", "hello"]

    sleeping = start(remote, definition, "Grace")
    wait_until(lambda: "wait_started" in remote.run("instances", "show", definition, sleeping))
    suspend = invoke("instances", "suspend", definition, sleeping, env=remote.env)
    if suspend.exit_code == 0:  # the 1 s wait may already be over on a slow machine
        assert f"{sleeping} Suspended" in suspend.stdout
        assert f"{sleeping} Runnable" in remote.run("instances", "resume", definition, sleeping)
    wait_until(
        lambda: (
            remote.json("instances", "list", definition, "--status", "Complete", "--limit", "5")
            and len(remote.json("instances", "list", definition, "--status", "Complete")) == 2
        )
    )
    result = invoke("instances", "terminate", definition, sleeping, env=remote.env)
    fails_cleanly(result, "its status is Complete", "code 1310")


def test_a_failed_instance_is_retried_on_the_latest_version(remote: Remote, tmp_path: Path) -> None:
    hello: dict[str, Any] = FLOW["definition"]["steps"][1]
    failing = {**hello, "inputs": {**hello["inputs"], "text": "{{data.who.name}}"}}
    broken = {**FLOW, "definition": {"name": "broken", "steps": [failing]}}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    definition = json.loads(remote.run("definitions", "push", str(path), "--json"))["id"]
    workflow = start(remote, definition, "Linus")
    wait_until(lambda: remote.json("instances", "list", definition, "--status", "Terminated"))
    fixed = {**broken, "definition": {"name": "fixed", "steps": [hello]}}
    path.write_text(json.dumps(fixed))
    remote.run("definitions", "push", str(path), "--id", definition)
    retried = remote.run("instances", "retry", definition, workflow, "--latest")
    assert f"{workflow} Runnable on version 2" in retried
    wait_until(lambda: remote.json("instances", "list", definition, "--status", "Complete"))


def test_the_sandbox_commands_drive_a_server(remote: Remote, flow_file: Path) -> None:
    remote.run("definitions", "push", str(flow_file))
    sent = json.loads(
        remote.run(
            "sandbox",
            "sms",
            "+6590000001",
            "hi",
            "-a",
            remote.account,
            "--server",
            remote.server.base_url,
        )
    )
    assert sent["duplicate"] is False
    assert sent["event"]["payload"]["body"] == "hi"
    outbox = json.loads(
        remote.run(
            "sandbox",
            "outbox",
            "-a",
            remote.account,
            "--server",
            remote.server.base_url,
            "--channel",
            "sms",
            "--limit",
            "50",
        )
    )
    assert all(message["channel"] == "sms" for message in outbox)


def write_profile(tmp_path: Path, text: str, mode: int = 0o600) -> dict[str, str]:
    directory = tmp_path / "config" / "relayflow"
    directory.mkdir(parents=True)
    path = directory / "config.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "RELAYFLOW_SERVER": "",
        "RELAYFLOW_API_KEY": "",
        "RELAYFLOW_ACCOUNT": "",
        "RELAYFLOW_PROFILE": "",
    }


def test_a_profile_names_the_server_key_and_account(remote: Remote, tmp_path: Path) -> None:
    env = write_profile(
        tmp_path,
        f'default_profile = "local"\n\n[profiles.local]\nserver = "{remote.server.base_url}"\n'
        f'key = "{remote.key}"\naccount = "{remote.account}"\n\n'
        '[profiles.elsewhere]\nserver = "http://127.0.0.1:1"\nkey = "k"\naccount = "a"\n',
    )
    assert isinstance(json.loads(remote.run("definitions", "list", "--json", env=env)), list)
    named = invoke("definitions", "list", "--profile", "local", "--json", env=env)
    assert isinstance(json.loads(ok(named)), list)
    unreachable = invoke("definitions", "list", "--profile", "elsewhere", env=env)
    fails_cleanly(unreachable, "http://127.0.0.1:1", "Connection refused")
    fails_cleanly(invoke("definitions", "list", "--profile", "nope", env=env), "[profiles.nope]")
    # A flag wins over the profile.
    wrong_key = invoke("definitions", "list", "--key", "rf_nope_nope", env=env)
    fails_cleanly(wrong_key, "HTTP 401")


def test_a_readable_profile_file_is_warned_about(remote: Remote, tmp_path: Path) -> None:
    env = write_profile(
        tmp_path,
        f'[profiles.p]\nserver = "{remote.server.base_url}"\nkey = "{remote.key}"\n'
        f'account = "{remote.account}"\n',
        mode=0o644,
    )
    result = invoke("definitions", "list", "--profile", "p", "--json", env=env)
    ok(result)
    assert "chmod 600" in flat(result.stderr)


def test_bad_profiles_and_missing_settings_are_clear_errors(tmp_path: Path) -> None:
    env = write_profile(tmp_path, "this is [not toml")
    fails_cleanly(invoke("definitions", "list", "--profile", "p", env=env), "config.toml")
    env = write_profile(tmp_path / "b", '[profiles.p]\nserver = "x"\ncolour = "red"\n')
    fails_cleanly(invoke("definitions", "list", "--profile", "p", env=env), "unknown setting")
    env = write_profile(tmp_path / "c", "")
    no_key = invoke("definitions", "list", env=env)
    assert no_key.exit_code == 2
    assert "no API key" in flat(no_key.stderr)
    no_account = invoke("definitions", "list", "--key", "k", env=env)
    assert no_account.exit_code == 2
    assert "no account" in flat(no_account.stderr)


def test_pushing_a_bad_file_or_definition_is_a_clear_error(remote: Remote, tmp_path: Path) -> None:
    missing = invoke("definitions", "push", str(tmp_path / "none.json"), env=remote.env)
    fails_cleanly(missing, "cannot read")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    fails_cleanly(invoke("definitions", "push", str(bad_json), env=remote.env), "bad.json")
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({**FLOW, "definition": {"name": "", "steps": []}}))
    result = invoke("definitions", "push", str(invalid), env=remote.env)
    message = fails_cleanly(result, "code 5001")
    assert "definition.steps" in message  # every problem, with its path


def test_bulk_suspends_every_matching_instance_and_prints_the_counts(
    remote: Remote, tmp_path: Path
) -> None:
    sleepy = {
        **FLOW,
        "definition": {
            "name": "bulk",
            "steps": [{"id": "nap", "stepType": "Wait", "inputs": {"duration": "01:00:00"}}],
        },
    }
    path = tmp_path / "sleepy.json"
    path.write_text(json.dumps(sleepy))
    definition = json.loads(remote.run("definitions", "push", str(path), "--json"))["id"]
    for name in ("a", "b", "c"):
        start(remote, definition, name)
    wait_until(
        lambda: len(remote.json("instances", "list", definition, "--status", "Runnable")) == 3
    )
    printed = remote.run("instances", "bulk", definition, "--action", "suspend")
    assert "suspend: 3 matched, 3 changed, 0 skipped" in printed
    counts = json.loads(
        remote.run("instances", "bulk", definition, "--action", "suspend", "--json")
    )
    assert (counts["matched"], counts["changed"], counts["skipped"]) == (3, 0, 3)
    assert len(remote.json("instances", "list", definition, "--status", "Suspended")) == 3
    bad = invoke("instances", "bulk", definition, "--action", "resume", "--version", "x",
                 env=remote.env)  # fmt: skip
    assert bad.exit_code == 2
    assert "--version" in flat(bad.stderr)
