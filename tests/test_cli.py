"""The `relayflow` command line (DESIGN.md §4.5), on SQLite and PostgreSQL.

Most tests drive `relayflow.cli.app` in-process with typer's `CliRunner`; the `slow` tests start
real `relayflow serve` processes. The PostgreSQL database is shared by the whole session and is
not emptied for these tests, so every account id here carries a random suffix.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.clock import SystemClock
from relayflow.config import Settings
from relayflow.services.accounts import AccountService
from relayflow.services.secrets import hash_secret
from relayflow.store.database import Database
from relayflow.store.tables import metadata
from tests.support.cli import fails_cleanly, flat, invoke, ok
from tests.support.databases import PG_ADMIN_DSN, pg_admin
from tests.support.definitions import sms_definition
from tests.support.processes import RELAYFLOW, Server, child_env, free_port

DATA = Path(__file__).parent / "data" / "cli"

# The problems in data/cli/invalid.json: (JSON path, error code), in no particular order.
INVALID_FILE_PROBLEMS = {
    ("trigger", 5002),
    ("status", 5003),
    ("definition.steps[0].nextStepId", 5008),
    ("definition.steps[1].id", 5006),
    ("definition.steps[1].stepType", 5007),
}


# --------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No inherited RELAYFLOW_* settings, and a forgotten --db cannot touch the checkout."""
    for name in list(os.environ):
        if name.startswith("RELAYFLOW_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def run_db(url: str, action: Any) -> Any:
    """Run `await action(db)` on a fresh `Database` (the CLI tests themselves are synchronous)."""

    async def main() -> Any:
        db = Database(url)
        try:
            return await action(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def authenticate(url: str, api_key: str) -> str | None:
    return run_db(url, lambda db: AccountService(db, SystemClock()).authenticate(api_key))


def api_get(url: str, api_key: str, path: str) -> httpx.Response:
    """GET `path` from the HTTP API (in-process) over the database at `url`."""

    async def call(db: Database) -> httpx.Response:
        context = AppContext(settings=Settings(database_url=url), db=db)
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as c:
            return await c.get(path, headers={"Authorization": f"Bearer {api_key}"})

    response: httpx.Response = run_db(url, call)
    return response


def definitions_status(url: str, account_id: str, api_key: str) -> int:
    return api_get(url, api_key, f"/api/v1/accounts/{account_id}/definitions").status_code


def create_account(url: str, account_id: str, *extra: str) -> dict[str, str]:
    created: dict[str, str] = json.loads(
        ok(invoke("accounts", "create", account_id, "--db", url, *extra))
    )
    return created


def list_accounts(url: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(ok(invoke("accounts", "list", "--json", "--db", url)))
    assert isinstance(rows, list)
    return {row["accountId"]: row for row in rows}


def list_keys(url: str, account_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(invoke("keys", "list", account_id, "--db", url)))
    return rows


def secret_part(secret: str) -> str:
    """`rf_<keyid>_<secret>` -> `<secret>`; `wh_<secret>` -> `<secret>` (may contain '_')."""
    prefix, _, rest = secret.partition("_")
    return rest.partition("_")[2] if prefix == "rf" else rest


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


@pytest.fixture
def empty_database_url(database_url: str) -> Iterator[str]:
    """A database without any tables: a new SQLite file, or a new PostgreSQL database."""
    if is_sqlite(database_url):
        yield database_url
        return
    name = f"relayflow_cli_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def table_names(url: str) -> set[str]:
    async def names(db: Database) -> set[str]:
        async with db.read() as conn:
            found: list[str] = await conn.run_sync(lambda c: inspect(c).get_table_names())
        return set(found)

    result: set[str] = run_db(url, names)
    return result


# --------------------------------------------------------------------------------------------
# db upgrade


def test_db_upgrade_creates_the_schema_and_is_idempotent(empty_database_url: str) -> None:
    url = empty_database_url
    assert not table_names(url) - {"alembic_version"}, "precondition: no relayflow tables yet"

    assert "up to date" in ok(invoke("db", "upgrade", "--db", url))
    tables = table_names(url)
    expected = {table.name for table in metadata.sorted_tables}
    assert expected <= tables, f"missing tables: {sorted(expected - tables)}"
    assert "alembic_version" in tables

    assert "up to date" in ok(invoke("db", "upgrade", "--db", url))
    assert table_names(url) == tables
    # The schema is usable: a command that needs it works.
    assert list_accounts(url) == {}


def test_sqlite_upgrade_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "r.db"
    ok(invoke("db", "upgrade", "--db", f"sqlite:///{path}"))
    assert path.is_file()


# --------------------------------------------------------------------------------------------
# accounts


def test_accounts_create_prints_credentials_that_authenticate(database_url: str) -> None:
    account_id = unique("acme")
    result = invoke("accounts", "create", account_id, "--db", database_url)
    created = json.loads(ok(result))

    assert set(created) == {"accountId", "apiKey", "webhookToken"}
    assert created["accountId"] == account_id
    assert created["apiKey"].startswith("rf_")
    assert created["webhookToken"].startswith("wh_")
    assert result.stderr == ""

    assert authenticate(database_url, created["apiKey"]) == account_id
    assert definitions_status(database_url, account_id, created["apiKey"]) == 200
    # The webhook token is not an API key.
    assert authenticate(database_url, created["webhookToken"]) is None

    listed = list_accounts(database_url)[account_id]
    assert listed["provider"] == "sandbox"
    assert listed["activeKeys"] == 1


def test_each_account_gets_its_own_secrets(database_url: str) -> None:
    first = create_account(database_url, unique("one"))
    second = create_account(database_url, unique("two"))
    assert first["apiKey"] != second["apiKey"]
    assert first["webhookToken"] != second["webhookToken"]
    # A key opens only its own account.
    assert definitions_status(database_url, second["accountId"], first["apiKey"]) == 403


def test_accounts_create_with_the_8x8_provider(database_url: str) -> None:
    account_id = unique("eight")
    create_account(database_url, account_id, "--provider", "8x8")
    assert list_accounts(database_url)[account_id]["provider"] == "8x8"


def test_accounts_create_rejects_an_unknown_provider(database_url: str) -> None:
    account_id = unique("carrier")
    result = invoke("accounts", "create", account_id, "--provider", "pigeon", "--db", database_url)
    fails_cleanly(result, "Unknown provider 'pigeon'", "sandbox", "8x8")
    assert account_id not in list_accounts(database_url)


def test_creating_an_account_twice_fails_and_keeps_the_first(database_url: str) -> None:
    account_id = unique("twice")
    first = create_account(database_url, account_id)

    result = invoke("accounts", "create", account_id, "--db", database_url)
    fails_cleanly(result, f"Account '{account_id}' already exists.")
    assert result.stdout == "", "no credentials may be printed for a failed create"

    assert authenticate(database_url, first["apiKey"]) == account_id
    assert list_accounts(database_url)[account_id]["activeKeys"] == 1
    assert [key["name"] for key in list_keys(database_url, account_id)] == ["initial"]


@pytest.mark.parametrize(
    "account_id",
    [
        "bad id",
        "bad!",
        "_leading-underscore",
        ".leading-dot",
        "a/b",
        "ünicode",
        "x" * 101,
        "",
    ],
    ids=[
        "space",
        "bang",
        "underscore-first",
        "dot-first",
        "slash",
        "non-ascii",
        "101-chars",
        "empty",
    ],
)
def test_accounts_create_rejects_an_invalid_id(database_url: str, account_id: str) -> None:
    before = set(list_accounts(database_url))
    # `--` so that ids starting with punctuation reach the validator, not the option parser.
    result = invoke("accounts", "create", "--db", database_url, "--", account_id)
    fails_cleanly(result, "Invalid account id", "1-100 letters, digits")
    assert result.stdout == ""
    assert set(list_accounts(database_url)) == before


def test_accounts_create_accepts_the_longest_and_punctuated_ids(database_url: str) -> None:
    longest = secrets.token_hex(50)  # 100 characters
    punctuated = unique("A1_b.c-D")
    for account_id in (longest, punctuated):
        created = create_account(database_url, account_id)
        assert authenticate(database_url, created["apiKey"]) == account_id


def test_accounts_list_table_and_json(database_url: str) -> None:
    alpha, beta = unique("alpha"), unique("beta")
    create_account(database_url, beta, "--provider", "8x8")
    create_account(database_url, alpha)
    ok(invoke("keys", "create", alpha, "--db", database_url))

    rows = list_accounts(database_url)
    if is_sqlite(database_url):
        assert list(rows) == [alpha, beta], "a fresh database lists exactly its accounts, by id"
    for row in rows.values():
        assert set(row) == {"accountId", "provider", "activeKeys", "createdAt"}
    assert rows[alpha]["provider"] == "sandbox"
    assert rows[alpha]["activeKeys"] == 2
    assert rows[beta]["provider"] == "8x8"
    assert rows[beta]["activeKeys"] == 1
    for account_id in (alpha, beta):
        created_at = rows[account_id]["createdAt"]
        assert created_at.endswith("Z"), created_at
        assert "T" in created_at, created_at

    table = ok(invoke("accounts", "list", "--db", database_url))
    for heading in ("account", "provider", "active keys", "created"):
        assert heading in table
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    assert alpha in lines, table
    assert beta in lines, table
    assert [cell.strip() for cell in lines[alpha].split("│")[1:-1]] == [
        alpha,
        "sandbox",
        "2",
        rows[alpha]["createdAt"],
    ]
    assert [cell.strip() for cell in lines[beta].split("│")[1:-1]][:3] == [beta, "8x8", "1"]


def test_accounts_list_table_shows_long_ids_in_full(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'long.db'}"
    account_id = "a-rather-long-but-perfectly-valid-account-id"
    create_account(url, account_id)
    assert account_id in ok(invoke("accounts", "list", "--db", url))


def test_accounts_list_on_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert json.loads(ok(invoke("accounts", "list", "--json", "--db", url))) == []
    table = ok(invoke("accounts", "list", "--db", url))
    assert "account" in table
    assert not [line for line in table.splitlines() if "│" in line]


def test_database_url_from_the_environment(database_url: str) -> None:
    env = {"RELAYFLOW_DATABASE_URL": database_url}
    account_id = unique("envvar")

    ok(invoke("db", "upgrade", env=env))
    created = json.loads(ok(invoke("accounts", "create", account_id, env=env)))
    assert created["accountId"] == account_id
    assert authenticate(database_url, created["apiKey"]) == account_id

    rows = json.loads(ok(invoke("accounts", "list", "--json", env=env)))
    assert account_id in {row["accountId"] for row in rows}
    key = json.loads(ok(invoke("keys", "create", account_id, env=env)))
    assert authenticate(database_url, key["apiKey"]) == account_id
    assert len(json.loads(ok(invoke("keys", "list", account_id, env=env)))) == 2
    ok(invoke("keys", "revoke", key["keyId"], env=env))
    assert authenticate(database_url, key["apiKey"]) is None
    # Nothing landed in the default database of the working directory.
    assert not Path("relayflow.db").exists()


def test_the_db_flag_overrides_the_environment(database_url: str) -> None:
    env = {"RELAYFLOW_DATABASE_URL": "mysql://ignored"}
    account_id = unique("flag")
    created = json.loads(
        ok(invoke("accounts", "create", account_id, "--db", database_url, env=env))
    )
    assert authenticate(database_url, created["apiKey"]) == account_id


# --------------------------------------------------------------------------------------------
# keys


def test_keys_create_prints_a_working_bearer_key(database_url: str) -> None:
    account_id = unique("keys")
    account = create_account(database_url, account_id)

    result = invoke("keys", "create", account_id, "--name", "ci", "--db", database_url)
    key = json.loads(ok(result))
    assert set(key) == {"accountId", "keyId", "apiKey"}
    assert key["accountId"] == account_id
    assert key["apiKey"].startswith(f"rf_{key['keyId']}_")
    assert key["apiKey"] != account["apiKey"]

    assert authenticate(database_url, key["apiKey"]) == account_id
    assert definitions_status(database_url, account_id, key["apiKey"]) == 200
    assert definitions_status(database_url, account_id, key["apiKey"] + "x") == 401
    # The first key keeps working.
    assert definitions_status(database_url, account_id, account["apiKey"]) == 200
    assert list_accounts(database_url)[account_id]["activeKeys"] == 2

    unnamed = json.loads(ok(invoke("keys", "create", account_id, "--db", database_url)))
    assert authenticate(database_url, unnamed["apiKey"]) == account_id
    names = {row["keyId"]: row["name"] for row in list_keys(database_url, account_id)}
    assert names[key["keyId"]] == "ci"
    assert names[unnamed["keyId"]] is None


def test_keys_create_for_an_unknown_account_fails(database_url: str) -> None:
    account_id = unique("ghost")
    result = invoke("keys", "create", account_id, "--db", database_url)
    fails_cleanly(result, f"Account '{account_id}' does not exist.")
    assert result.stdout == ""


def test_keys_list_shows_ids_but_never_secrets(database_url: str) -> None:
    account_id = unique("secretive")
    account = create_account(database_url, account_id)
    extra = json.loads(
        ok(invoke("keys", "create", account_id, "--name", "ops", "--db", database_url))
    )

    result = invoke("keys", "list", account_id, "--db", database_url)
    out = ok(result)
    rows = json.loads(out)
    assert [set(row) for row in rows] == [{"keyId", "name", "createdAt", "revokedAt", "admin"}] * 2
    by_id = {row["keyId"]: row for row in rows}
    initial_id = account["apiKey"].split("_")[1]
    assert set(by_id) == {initial_id, extra["keyId"]}
    assert by_id[initial_id]["name"] == "initial"
    assert by_id[extra["keyId"]]["name"] == "ops"
    assert (by_id[initial_id]["admin"], by_id[extra["keyId"]]["admin"]) == (True, False)
    assert all(row["revokedAt"] is None for row in rows)

    everything = result.output
    for secret in (account["apiKey"], extra["apiKey"], account["webhookToken"]):
        assert secret not in everything
        assert secret_part(secret) not in everything, "the secret part of a key leaked"
        assert hash_secret(secret) not in everything, "a secret's hash leaked"
    assert "rf_" not in everything
    assert "wh_" not in everything


def test_keys_list_for_an_unknown_account_fails(database_url: str) -> None:
    account_id = unique("nobody")
    fails_cleanly(
        invoke("keys", "list", account_id, "--db", database_url),
        f"Account '{account_id}' does not exist.",
    )


def test_keys_revoke_stops_the_key(database_url: str) -> None:
    account_id = unique("revoke")
    account = create_account(database_url, account_id)
    key = json.loads(ok(invoke("keys", "create", account_id, "--db", database_url)))
    assert definitions_status(database_url, account_id, key["apiKey"]) == 200

    out = ok(invoke("keys", "revoke", key["keyId"], "--db", database_url))
    assert key["keyId"] in out

    assert authenticate(database_url, key["apiKey"]) is None
    assert definitions_status(database_url, account_id, key["apiKey"]) == 401
    # Only that key: the account's other key still works.
    assert authenticate(database_url, account["apiKey"]) == account_id
    assert definitions_status(database_url, account_id, account["apiKey"]) == 200

    rows = {row["keyId"]: row for row in list_keys(database_url, account_id)}
    assert rows[key["keyId"]]["revokedAt"] is not None
    assert rows[key["keyId"]]["revokedAt"].endswith("Z")
    assert rows[account["apiKey"].split("_")[1]]["revokedAt"] is None
    assert list_accounts(database_url)[account_id]["activeKeys"] == 1

    again = invoke("keys", "revoke", key["keyId"], "--db", database_url)
    fails_cleanly(again, f"No active API key with id '{key['keyId']}'")
    assert authenticate(database_url, key["apiKey"]) is None


def test_keys_revoke_of_an_unknown_key_fails(database_url: str) -> None:
    fails_cleanly(
        invoke("keys", "revoke", "000000000000", "--db", database_url),
        "No active API key with id '000000000000'",
    )


def test_revoking_the_last_key_locks_the_account_until_a_new_key(database_url: str) -> None:
    account_id = unique("locked")
    account = create_account(database_url, account_id)
    ok(invoke("keys", "revoke", account["apiKey"].split("_")[1], "--db", database_url))
    assert definitions_status(database_url, account_id, account["apiKey"]) == 401
    assert list_accounts(database_url)[account_id]["activeKeys"] == 0

    fresh = json.loads(ok(invoke("keys", "create", account_id, "--db", database_url)))
    assert definitions_status(database_url, account_id, fresh["apiKey"]) == 200


# --------------------------------------------------------------------------------------------
# Unsupported or unreachable databases


COMMANDS_WITH_DB = [
    ["db", "upgrade"],
    ["accounts", "create", "acme"],
    ["accounts", "list"],
    ["accounts", "list", "--json"],
    ["keys", "create", "acme"],
    ["keys", "list", "acme"],
    ["keys", "revoke", "0123456789ab"],
]


@pytest.mark.parametrize("command", COMMANDS_WITH_DB, ids=lambda c: " ".join(c))
def test_an_unsupported_database_url_fails_cleanly(command: list[str]) -> None:
    result = invoke(*command, "--db", "mysql://x")
    fails_cleanly(result, "Unsupported database 'mysql'", "sqlite:///", "postgresql://")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://x", "Unsupported database 'mysql'"),
        ("oracle://scott@db/orcl", "Unsupported database 'oracle'"),
        ("sqlite://", "SQLite needs a file"),
        ("sqlite:///:memory:", "SQLite needs a file"),
        ("not a url", "is not a database URL"),
    ],
)
def test_bad_database_urls_are_explained(url: str, fragment: str) -> None:
    fails_cleanly(invoke("accounts", "list", "--db", url), fragment)


def test_bad_database_url_from_the_environment_fails_cleanly() -> None:
    result = invoke("accounts", "list", env={"RELAYFLOW_DATABASE_URL": "mysql://x"})
    fails_cleanly(result, "Unsupported database 'mysql'")


def test_an_unreachable_postgresql_server_fails_cleanly() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/relayflow"
    fails_cleanly(invoke("accounts", "list", "--db", url), "cannot reach the database")


@pytest.mark.postgres
def test_a_missing_postgresql_database_fails_cleanly(postgres_url: str) -> None:
    base, _, _ = postgres_url.rpartition("/")
    url = f"{base}/relayflow_missing_{secrets.token_hex(4)}"
    fails_cleanly(invoke("accounts", "list", "--db", url), "does not exist")


def test_a_file_that_is_not_a_database_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    fails_cleanly(invoke("accounts", "list", "--db", f"sqlite:///{path}"), "not a database")


# --------------------------------------------------------------------------------------------
# validate


def test_validate_a_valid_file() -> None:
    path = DATA / "valid.json"
    result = invoke("validate", str(path))
    assert ok(result).strip() == f"{path}: valid"
    assert result.stderr == ""

    report = json.loads(ok(invoke("validate", "--json", str(path))))
    assert report == {"valid": True, "errors": []}


def test_the_valid_data_file_matches_the_api_helper() -> None:
    assert json.loads((DATA / "valid.json").read_text()) == sms_definition()


def test_validate_an_invalid_file_lists_every_problem() -> None:
    path = DATA / "invalid.json"
    result = invoke("validate", str(path))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)

    lines = result.stdout.strip().splitlines()
    printed = set()
    for line in lines:
        location, _, rest = line.partition(": [")
        code, _, message = rest.partition("] ")
        assert location, f"unexpected line {line!r}"
        assert code.isdigit(), f"unexpected line {line!r}"
        assert message, f"unexpected line {line!r}"
        printed.add((location, int(code)))
    assert printed == INVALID_FILE_PROBLEMS
    assert len(lines) == len(INVALID_FILE_PROBLEMS)


def test_validate_json_report_of_an_invalid_file() -> None:
    text_lines = invoke("validate", str(DATA / "invalid.json")).stdout.strip().splitlines()
    result = invoke("validate", "--json", str(DATA / "invalid.json"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)

    report = json.loads(result.stdout)
    assert set(report) == {"valid", "errors"}
    assert report["valid"] is False
    for error in report["errors"]:
        assert set(error) == {"code", "message", "path"}
        assert isinstance(error["code"], int)
        assert error["message"]
    assert {(e["path"], e["code"]) for e in report["errors"]} == INVALID_FILE_PROBLEMS
    # The text and JSON reports tell the same story, in the same order.
    assert text_lines == [f"{e['path']}: [{e['code']}] {e['message']}" for e in report["errors"]]


def test_validate_an_empty_object_reports_the_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "empty-object.json"
    path.write_text("{}")
    report = json.loads(invoke("validate", "--json", str(path)).stdout)
    assert report["valid"] is False
    assert {(e["path"], e["code"]) for e in report["errors"]} >= {
        ("definition.name", 5001),
        ("trigger", 5002),
    }


def test_validate_reads_stdin() -> None:
    valid = (DATA / "valid.json").read_text()
    assert ok(invoke("validate", "-", stdin=valid)).strip() == "-: valid"

    invalid = invoke("validate", "--json", "-", stdin=(DATA / "invalid.json").read_text())
    assert invalid.exit_code == 1
    assert json.loads(invalid.stdout)["valid"] is False


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_validate_malformed_json(as_json: bool) -> None:
    path = DATA / "malformed.json"
    result = invoke("validate", *(["--json"] if as_json else []), str(path))
    fails_cleanly(result, str(path), "is not valid JSON")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("[1, 2]", "must be a JSON object, not an array"),
        ('"text"', "must be a JSON object, not a string"),
        ("null", "must be a JSON object, not null"),
        ("[" * 5000 + "]" * 5000, "depth limit"),
        ('{"a":' * 150 + "1" + "}" * 150, "nested"),
        ("\xff\xfe garbage", "is not valid JSON"),
    ],
    ids=["empty", "blank", "array", "string", "null", "deep-array", "deep-object", "binary"],
)
def test_validate_unacceptable_documents(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(content.encode("latin-1"))
    fails_cleanly(invoke("validate", str(path)), fragment)


def test_validate_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    result = invoke("validate", str(path))
    fails_cleanly(result, f"cannot read {path}", "No such file or directory")
    assert result.stdout == ""


def test_validate_a_directory(tmp_path: Path) -> None:
    fails_cleanly(invoke("validate", str(tmp_path)), f"cannot read {tmp_path}")


# --------------------------------------------------------------------------------------------
# docs


def test_docs_errors_prints_the_error_table() -> None:
    table = ok(invoke("docs", "errors"))
    assert "|" in table
    for code in ("1200", "5001", "5018"):
        assert code in table


# --------------------------------------------------------------------------------------------
# Real processes


def assert_clean_exit(server: Server, code: int, db_path: Path) -> None:
    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal, so the process
    # may report "killed by SIGTERM" after a clean shutdown; anything else is a failure.
    assert code in (0, -signal.SIGTERM), f"exit code {code}\nstderr:\n{server.stderr}"
    assert "Traceback" not in server.stderr, server.stderr
    # A graceful shutdown closes the database: SQLite folds its write-ahead log back in.
    assert not Path(f"{db_path}-wal").exists(), "the database was not closed on shutdown"


@pytest.mark.slow
def test_serve_creates_the_demo_account_once_and_keeps_data(tmp_path: Path) -> None:
    db_path = tmp_path / "r.db"
    db_url = f"sqlite:///{db_path}"

    first = Server(tmp_path, "first", "serve", db_url, child_env())
    try:
        first.wait_healthy()
        documents = first.printed_json()
        assert len(documents) == 1, f"demo credentials printed {len(documents)} times"
        demo = documents[0]
        assert set(demo) == {"accountId", "apiKey", "webhookToken"}
        assert demo["accountId"] == "demo"
        headers = {"Authorization": f"Bearer {demo['apiKey']}"}

        with httpx.Client(base_url=first.base_url, timeout=10.0) as http:
            health = http.get("/healthz").json()
            assert health["status"] == "ok"
            assert health["database"] == "sqlite"

            created = http.post(
                "/api/v1/accounts/demo/definitions", json=sms_definition(), headers=headers
            )
            assert created.status_code == 201, created.text
            definition_id = created.json()["id"]

            listed = http.get("/api/v1/accounts/demo/definitions", headers=headers)
            assert listed.status_code == 200, listed.text
            assert [d["id"] for d in listed.json()] == [definition_id]

            wrong = http.get(
                "/api/v1/accounts/demo/definitions",
                headers={"Authorization": f"Bearer {demo['webhookToken']}"},
            )
            assert wrong.status_code == 401

        assert_clean_exit(first, first.terminate(), db_path)
    finally:
        first.kill9()
    assert first.printed_json() == [demo], "stdout changed after start-up"

    second = Server(tmp_path, "second", "serve", db_url, child_env())
    try:
        second.wait_healthy()
        assert second.printed_json() == []
        assert "demo" not in second.stdout
        assert demo["apiKey"] not in second.stdout + second.stderr
        assert "listening on" in second.stdout

        with httpx.Client(base_url=second.base_url, timeout=10.0) as http:
            listed = http.get("/api/v1/accounts/demo/definitions", headers=headers)
            assert listed.status_code == 200, listed.text
            assert [d["id"] for d in listed.json()] == [definition_id]
            fetched = http.get(
                f"/api/v1/accounts/demo/definitions/{definition_id}", headers=headers
            )
            assert fetched.status_code == 200, fetched.text

        assert_clean_exit(second, second.terminate(), db_path)
    finally:
        second.kill9()
    # Secrets never reach the logs.
    assert demo["apiKey"] not in first.stderr + second.stderr
    assert demo["webhookToken"] not in first.stderr + second.stderr


@pytest.mark.slow
def test_serve_with_an_unsupported_database_fails_cleanly(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(RELAYFLOW), "serve", "--db", "mysql://x", "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(),
        timeout=30,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "Unsupported database 'mysql'" in flat(completed.stderr)
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
