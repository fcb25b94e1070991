"""`relayflow simulate FLOW.json [--script FILE] [--start ISO] [--mocks FILE]`: a terminal
session as the customer, on the real engine in virtual time.

Sync tests: the command runs its own event loop. Interactive sessions get their lines through
CliRunner's `stdin=` (stdin is not a terminal there, so each line is echoed as `> line`, the
same transcript as `--script`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from relayflow.cli import app
from relayflow.testing.simulate import CommandError, parse_command, timespan

GALLERY = Path(__file__).parents[1] / "src/relayflow/console/static/gallery"
SURVEY, IVR, LOOKUP = GALLERY / "survey.json", GALLERY / "ivr.json", GALLERY / "http-lookup.json"
PHONE = "+6591234567"

BOOKING: dict[str, Any] = {
    "trigger": "http_request",
    "status": "enabled",
    "definition": {
        "name": "Booking confirmation",
        "steps": [
            {
                "id": "ask",
                "stepType": "ChatAppsMessage",
                "inputs": {
                    "subAccountId": "acme_wa",
                    "user": {"msisdn": "{{data.phone}}"},
                    "type": "text",
                    "content": {"text": "Confirm your booking?"},
                },
                "nextStepId": "wait",
            },
            {
                "id": "wait",
                "stepType": "WaitForReply",
                "inputs": {"from": "{{data.phone}}", "channel": "whatsapp"},
                "outputs": {
                    "button": "{{step.reply.payload.content.payload}}",
                    "said": "{{step.reply.payload.content.text}}",
                },
                "selectNextStep": {"booked": "{{data.button == 'yes'}}", "declined": None},
            },
            {
                "id": "booked",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.phone}}",
                    "text": "Booked! See you then.",
                },
            },
            {
                "id": "declined",
                "stepType": "ChatAppsMessage",
                "inputs": {
                    "subAccountId": "acme_wa",
                    "user": {"msisdn": "{{data.phone}}"},
                    "type": "text",
                    "content": {"text": "Maybe next time."},
                },
            },
        ],
    },
}

LOOKUP_MOCKS: dict[str, Any] = {
    "http": [
        {
            "method": "GET",
            "url": "https://crm.example.com/orders/42",
            "respond": [{"status": 200, "json": {"state": "shipped"}}],
        },
        {"urlPrefix": "https://crm.example.com/orders/", "respond": [{"status": 404, "json": {}}]},
    ]
}


def simulate(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["simulate", *args], input=stdin)


def write(directory: Path, name: str, content: str | dict[str, Any]) -> Path:
    file = directory / name
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    file.write_text(text, encoding="utf-8")
    return file


def script(directory: Path, *lines: str) -> Path:
    return write(directory, "session.txt", "\n".join(lines) + "\n")


def lines_of(result: Result) -> list[str]:
    return result.stdout.splitlines()


# --------------------------------------------------------------------------------------------
# --script: a transcript


def test_a_scripted_survey_shows_the_question_and_the_reminder_a_day_later(tmp_path: Path) -> None:
    file = script(
        tmp_path,
        "# nobody answers the survey",
        "",
        '/http {"phone": "+6591234567"}',
        "/advance 1d",
    )
    result = simulate(str(SURVEY), "--script", str(file))
    assert result.exit_code == 0, result.output
    assert lines_of(result) == [
        'Simulating "Survey with a reminder" (http_request trigger) from '
        "2026-01-05T09:00:00.000Z, virtual time.",
        f"You are {PHONE}; your SMS go to +6580000000.",
        '> /http {"phone": "+6591234567"}',
        f"← sms to {PHONE}: How did we do? Reply 1 (great) to 5 (poor).",
        "instance 62e6e282… started",
        "instance 62e6e282…: step ask: Complete",
        "instance 62e6e282…: step answer: WaitingForEvent",
        "instance 62e6e282…: Runnable",
        "> /advance 1d",
        "time is now 2026-01-06T09:00:00.000Z (+1.00:00:00)",
        f"← sms to {PHONE}: A gentle reminder: we would love your feedback (1-5).",
        "instance 62e6e282…: step answer: Cancelled",
        "instance 62e6e282…: step remind: Complete",
        "instance 62e6e282…: data.score = null",
        "instance 62e6e282…: Complete",
    ]
    assert "\x1b" not in result.output  # plain text, no colours


def test_a_script_is_the_same_transcript_every_run(tmp_path: Path) -> None:
    file = script(tmp_path, '/http {"phone": "+6591234567"}', "/dtmf 1", "/data")
    first, second = (simulate(str(IVR), "--script", str(file)) for _ in range(2))
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout


def test_a_reply_within_the_day_takes_the_other_branch(tmp_path: Path) -> None:
    file = script(tmp_path, '/http {"phone": "+6591234567"}', "/advance 2h", "4")
    result = simulate(str(SURVEY), "--script", str(file))
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert "time is now 2026-01-05T11:00:00.000Z (+02:00:00)" in out
    assert out[out.index("> 4") + 1 :] == [
        f"← sms to {PHONE}: Thanks for your feedback!",
        "instance 62e6e282…: step answer: Complete",
        "instance 62e6e282…: step thanks: Complete",
        'instance 62e6e282…: data.score = "4"',
        "instance 62e6e282…: Complete",
    ]


def test_a_failed_action_stops_the_script_with_exit_1(tmp_path: Path) -> None:
    file = script(tmp_path, "/dtmf 1", '/http {"phone": "+6591234567"}')
    result = simulate(str(IVR), "--script", str(file))
    assert result.exit_code == 1
    assert lines_of(result)[-3:] == [
        "> /dtmf 1",
        "error: dtmf: no say&capture call has been made",
        "script stopped at line 1",
    ]
    assert "/http" not in result.stdout


def test_an_invalid_script_is_reported_by_line_before_anything_runs(tmp_path: Path) -> None:
    file = script(tmp_path, "hi", "/chat whatsapp", "# fine", "/advance 1 day", "/teleport")
    result = simulate(str(SURVEY), "--script", str(file))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{file}:2: usage: /chat CHANNEL TEXT, e.g. /chat whatsapp Yes",
        f"{file}:4: '1 day' is not a span; use 1d, 2h, 30m, 45s, 1d2h, [d.]hh:mm:ss or whole days",
        f"{file}:5: unknown command /teleport; type /help for the list",
    ]


def test_a_missing_script_exits_2(tmp_path: Path) -> None:
    result = simulate(str(SURVEY), "--script", str(tmp_path / "none.txt"))
    assert result.exit_code == 2
    assert "none.txt: cannot read: No such file or directory" in result.stderr


def test_quit_ends_a_script_early(tmp_path: Path) -> None:
    file = script(tmp_path, "/quit", '/http {"phone": "+6591234567"}')
    result = simulate(str(SURVEY), "--script", str(file))
    assert result.exit_code == 0
    assert lines_of(result)[-1] == "> /quit"


# --------------------------------------------------------------------------------------------
# Interactive sessions


def test_the_ivr_menu_answers_dtmf(tmp_path: Path) -> None:
    result = simulate(str(IVR), stdin='/http {"phone": "+6591234567"}\n/dtmf 2\n')
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert "Type a message as the customer, /help for commands, /quit to leave." in out
    call = out.index('> /http {"phone": "+6591234567"}')
    assert out[call + 1] == (
        f'← call to {PHONE}: "Press 1 for sales, 2 for support." (press keys with /dtmf)'
    )
    assert out[out.index("> /dtmf 2") + 1 :] == [
        f"← sms to {PHONE}: Support ticket opened; we will text you updates.",
        "instance 62e6e282…: step digits: Complete",
        "instance 62e6e282…: step support: Complete",
        'instance 62e6e282…: data.choice = "2"',
        "instance 62e6e282…: Complete",
    ]


def test_a_button_press_and_a_chat_reply_take_different_branches(tmp_path: Path) -> None:
    flow = write(tmp_path, "booking.json", BOOKING)
    other = "+6590000001"
    session = "\n".join(
        [
            '/http {"phone": "+6591234567"}',
            "/button whatsapp yes Yes please",
            f'/http {{"phone": "{other}"}}',
            f"/from {other}",
            "/chat whatsapp No thanks",
        ]
    )
    result = simulate(str(flow), stdin=session + "\n")
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert f"← chat to {PHONE}: Confirm your booking?" in out
    button = out.index("> /button whatsapp yes Yes please")
    assert out[button + 1 : button + 6] == [
        f"← sms to {PHONE}: Booked! See you then.",
        "instance 62e6e282…: step wait: Complete",
        "instance 62e6e282…: step booked: Complete",
        'instance 62e6e282…: data.button = "yes"',
        'instance 62e6e282…: data.said = "Yes please"',
    ]
    assert f"you are {other}" in out
    chat = out.index("> /chat whatsapp No thanks")
    assert out[chat + 1] == f"← chat to {other}: Maybe next time."
    assert any(line.endswith(": step declined: Complete") for line in out[chat:])
    assert any(line.endswith(': data.said = "No thanks"') for line in out[chat:])


def test_data_prints_each_instance_as_pretty_json() -> None:
    result = simulate(str(SURVEY), stdin='/data\n/http {"phone": "+6591234567"}\n/data\n')
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert out[out.index("> /data") + 1] == "no instances yet"
    last = len(out) - 1 - out[::-1].index("> /data")
    assert out[last + 1 :] == [
        "instance 62e6e282e5c1657c78c3a967 (Runnable):",
        "{",
        f'  "phone": "{PHONE}",',
        '  "accountId": "acme",',
        '  "triggeredAt": "2026-01-05T09:00:00.000Z"',
        "}",
    ]


def test_a_bad_command_prints_an_error_and_the_session_goes_on() -> None:
    session = [
        "/teleport",
        "/advance 25:00:00",
        "/http [1]",
        "/http {nope",
        "/dtmf 12x",
        "/dtmf 1",
        '/http {"phone": "+6591234567"}',
    ]
    result = simulate(str(IVR), stdin="\n".join(session) + "\n")
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert "error: unknown command /teleport; type /help for the list" in out
    assert any(line.startswith("error: '25:00:00' is not a span") for line in out)
    assert 'error: /http takes a JSON object, e.g. /http {"phone": "+6591234567"}' in out
    assert any(line.startswith("error: /http takes a JSON object: Expecting") for line in out)
    assert "error: usage: /dtmf DIGITS (0-9, * and #), e.g. /dtmf 2" in out
    assert "error: dtmf: no say&capture call has been made" in out
    assert out[-1] == "instance 62e6e282…: Runnable"  # the session carried on


def test_events_that_start_nothing_say_so_with_a_hint() -> None:
    result = simulate(str(SURVEY), stdin="hello\n/chat viber hi\n/dtmf 1\n")
    out = lines_of(result)
    hint = "(nothing happened: no instance waits for this, and the flow starts on http_request: "
    assert out[out.index("> hello") + 1] == hint + "use /http JSON)"
    assert out[out.index("> /chat viber hi") + 1] == hint + "use /http JSON)"


def test_a_disabled_flow_is_pointed_out(tmp_path: Path) -> None:
    flow = write(tmp_path, "off.json", {**BOOKING, "status": "disabled"})
    result = simulate(str(flow), stdin='/http {"phone": "+6591234567"}\n')
    out = lines_of(result)
    assert any(line.startswith("note: the flow is disabled, so no event starts it") for line in out)
    assert out[-1] == "(nothing happened: the flow is disabled)"


def test_help_lists_the_commands() -> None:
    result = simulate(str(SURVEY), stdin="/help\n")
    for command in ("/from", "/chat", "/button", "/dtmf", "/advance", "/http", "/data", "/save"):
        assert f"  {command} " in result.stdout


def test_eof_and_quit_end_the_session() -> None:
    assert simulate(str(SURVEY), stdin="").exit_code == 0
    result = simulate(str(SURVEY), stdin='/quit\n/http {"phone": "+6591234567"}\n')
    assert result.exit_code == 0
    assert lines_of(result)[-1] == "> /quit"


def test_start_sets_the_virtual_time(tmp_path: Path) -> None:
    file = script(tmp_path, '/http {"phone": "+6591234567"}', "/advance 1d", "/data")
    result = simulate(str(SURVEY), "--start", "2026-03-02T09:00:00Z", "--script", str(file))
    assert result.exit_code == 0, result.output
    assert " from 2026-03-02T09:00:00.000Z, virtual time." in lines_of(result)[0]
    assert "time is now 2026-03-03T09:00:00.000Z (+1.00:00:00)" in result.stdout
    assert '"triggeredAt": "2026-03-02T09:00:00.000Z"' in result.stdout


def test_an_invalid_start_exits_2() -> None:
    result = simulate(str(SURVEY), "--start", "yesterday")
    assert result.exit_code == 2
    assert "--start: 'yesterday' is not an ISO-8601 date and time" in result.stderr


# --------------------------------------------------------------------------------------------
# /save: a flow test that `relayflow test` replays


def test_a_saved_session_passes_relayflow_test(tmp_path: Path) -> None:
    saved = tmp_path / "survey.flowtest.json"
    file = script(
        tmp_path,
        '/http {"phone": "+6591234567"}',
        "/advance 90m",
        "/advance 23h",
        "/advance 1",
        f"/save {saved}",
    )
    result = simulate(str(SURVEY), "--script", str(file))
    assert result.exit_code == 0, result.output
    assert lines_of(result)[-1] == (
        f"saved 4 actions to {saved}; replay it with: relayflow test {saved}"
    )
    text = saved.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.startswith('{\n  "name": "Survey with a reminder: simulated conversation",')
    document = json.loads(text)
    assert document["start"] == "2026-01-05T09:00:00.000Z"
    assert [entry.get("by") for entry in document["script"]] == [
        None,
        "01:30:00",
        "23:00:00",
        "1.00:00:00",
    ]
    assert document["expect"]["instances"][0]["status"] == "Complete"
    replay = CliRunner().invoke(app, ["test", str(saved)])
    assert replay.exit_code == 0, replay.output
    assert "1 passed, 0 failed" in replay.output


def test_save_overwrites_and_says_so(tmp_path: Path) -> None:
    saved = tmp_path / "ivr.flowtest.json"
    saved.write_text("old", encoding="utf-8")
    session = f'/http {{"phone": "+6591234567"}}\n/dtmf 1\n/save {saved}\n'
    result = simulate(str(IVR), stdin=session)
    assert result.exit_code == 0, result.output
    assert lines_of(result)[-1] == (
        f"saved 2 actions to {saved} (overwrote the file that was there); "
        f"replay it with: relayflow test {saved}"
    )
    assert CliRunner().invoke(app, ["test", str(saved)]).exit_code == 0


def test_a_save_that_cannot_write_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "x.flowtest.json"
    result = simulate(str(SURVEY), stdin=f"/save {target}\n/data\n")
    assert result.exit_code == 0
    assert f"error: cannot write {target}: No such file or directory" in lines_of(result)
    assert lines_of(result)[-1] == "no instances yet"


def test_a_saved_chat_session_with_mocks_replays(tmp_path: Path) -> None:
    mocks = write(tmp_path, "mocks.json", LOOKUP_MOCKS)
    saved = tmp_path / "lookup.flowtest.json"
    file = script(tmp_path, "42", "/from +6590000001", "7", f"/save {saved}")
    result = simulate(str(LOOKUP), "--mocks", str(mocks), "--script", str(file))
    assert result.exit_code == 0, result.output
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert document["mocks"] == LOOKUP_MOCKS
    assert [entry["from"] for entry in document["script"]] == [PHONE, "+6590000001"]
    assert CliRunner().invoke(app, ["test", str(saved)]).exit_code == 0


# --------------------------------------------------------------------------------------------
# --mocks


def test_http_mocks_answer_the_lookup(tmp_path: Path) -> None:
    mocks = write(tmp_path, "mocks.json", LOOKUP_MOCKS)
    result = simulate(str(LOOKUP), "--mocks", str(mocks), stdin="42\n7\n")
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert out[out.index("> 42") + 1 :][:9] == [
        f"← sms to {PHONE}: Your order is shipped.",
        "instance 3906a7c8… started",
        "instance 3906a7c8…: step lookup: Complete",
        "instance 3906a7c8…: step route: Complete",
        "instance 3906a7c8…: step found: Complete",
        "instance 3906a7c8…: data.code = 200",
        'instance 3906a7c8…: data.state = "shipped"',
        "instance 3906a7c8…: Complete",
        "→ GET https://crm.example.com/orders/42",
    ]
    assert f"← sms to {PHONE}: We could not find that order. Reply with your order number." in out
    assert "→ GET https://crm.example.com/orders/7" in out


def test_an_unmocked_call_is_pointed_out_and_the_step_fails(tmp_path: Path) -> None:
    saved = tmp_path / "unmocked.flowtest.json"
    result = simulate(str(LOOKUP), stdin=f"42\n/save {saved}\n")
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    assert (
        "→ GET https://crm.example.com/orders/42 "
        "(no mock matches it, so the call fails; answer it with --mocks FILE)"
    ) in out
    assert any(
        line.endswith(
            ": error in step lookup: No HTTP mock matches GET https://crm.example.com/orders/42."
        )
        for line in out
    )
    assert any(line.endswith(": Terminated") for line in out)
    assert out[-1].startswith("note: 1 HTTP call(s) matched no mock")


def test_provider_answers_show_failed_attempts_and_retries(tmp_path: Path) -> None:
    mocks = write(
        tmp_path, "mocks.json", {"sms": [{"httpStatus": 503}] * 2 + [{"httpStatus": 200}]}
    )
    saved = tmp_path / "retry.flowtest.json"
    file = script(tmp_path, '/http {"phone": "+6591234567"}', "/advance 10m", f"/save {saved}")
    result = simulate(str(SURVEY), "--mocks", str(mocks), "--script", str(file))
    assert result.exit_code == 0, result.output
    out = lines_of(result)
    failed = "instance 62e6e282…: step ask: Running (attempt 1 failed: Failed to send SMS because "
    assert any(line.startswith(failed) and "; retry at 2026-01-05T09:00:0" in line for line in out)
    advanced = out[out.index("> /advance 10m") + 1 :]
    assert f"← sms to {PHONE}: How did we do? Reply 1 (great) to 5 (poor)." in advanced
    assert "instance 62e6e282…: step ask: Complete (attempt 3)" in advanced
    assert CliRunner().invoke(app, ["test", str(saved)]).exit_code == 0


def test_invalid_mocks_exit_2_naming_each_path(tmp_path: Path) -> None:
    mocks = write(
        tmp_path,
        "mocks.json",
        {"http": [{"url": 3, "respond": []}], "sms": [{"httpStatus": 302}], "email": []},
    )
    result = simulate(str(LOOKUP), "--mocks", str(mocks), stdin="42\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{mocks}: email: unknown key; expected one of: http, sms, chatapps, voice",
        f"{mocks}: http[0].url: must be a string, not a number",
        f"{mocks}: http[0].respond: must hold at least one answer (the last one repeats)",
        f"{mocks}: sms[0].httpStatus: 302 is not an answer; use 200 (accepted), 4xx (rejected) "
        "or 5xx/429 (retried)",
    ]


def test_mocks_that_are_not_a_json_object_exit_2(tmp_path: Path) -> None:
    mocks = write(tmp_path, "mocks.json", "[1, 2]")
    result = simulate(str(LOOKUP), "--mocks", str(mocks))
    assert result.exit_code == 2
    assert f"{mocks}: must hold a JSON object, not an array" in result.stderr


# --------------------------------------------------------------------------------------------
# The flow file


def test_an_invalid_flow_exits_2_with_its_problems(tmp_path: Path) -> None:
    flow = write(
        tmp_path, "bad.json", {"trigger": "nope", "definition": {"name": "x", "steps": []}}
    )
    result = simulate(str(flow), stdin="hi\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{flow}: invalid flow: ")
    assert "  trigger: Trigger must be one of: inbound_sms, inbound_chat_apps, http_request." in (
        result.stderr
    )
    assert "  definition.steps: " in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON: "),
        ("[]", "must hold a JSON object, not an array"),
        ('{"a": NaN}', "not valid JSON: NaN is not a JSON value"),
    ],
)
def test_a_flow_file_that_is_not_a_json_object_exits_2(
    tmp_path: Path, content: str, message: str
) -> None:
    flow = write(tmp_path, "flow.json", content)
    result = simulate(str(flow))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{flow}: {message}")


def test_a_missing_flow_file_exits_2(tmp_path: Path) -> None:
    result = simulate(str(tmp_path / "absent.json"))
    assert result.exit_code == 2
    assert "absent.json: cannot read: No such file or directory" in result.stderr


def test_every_input_problem_is_reported_at_once(tmp_path: Path) -> None:
    file = script(tmp_path, "/nope")
    result = simulate(
        str(tmp_path / "absent.json"), "--script", str(file), "--start", "later", "--mocks", "m"
    )
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 4


# --------------------------------------------------------------------------------------------
# Parsing lines


@pytest.mark.parametrize(
    ("typed", "recorded"),
    [
        ("1d", "1.00:00:00"),
        ("2h", "02:00:00"),
        ("30m", "00:30:00"),
        ("45s", "00:00:45"),
        ("90m", "01:30:00"),
        ("1d2h30m", "1.02:30:00"),
        ("36H", "1.12:00:00"),
        ("2", "2.00:00:00"),
        ("0", "00:00:00"),
        ("00:05:00", "00:05:00"),
        ("1.06:30:15", "1.06:30:15"),
        ("00:00:01.5", "00:00:01.500"),
    ],
)
def test_spans_are_recorded_in_the_timespan_format(typed: str, recorded: str) -> None:
    assert timespan(typed) == recorded
    assert parse_command(f"/advance {typed}").value == recorded


@pytest.mark.parametrize("typed", ["1 day", "-1", "-00:01:00", "1w", "d", "25:00:00", "3651d"])
def test_spans_that_are_not_spans_are_refused(typed: str) -> None:
    with pytest.raises(CommandError):
        timespan(typed)


def test_plain_lines_are_sms_and_commands_take_their_arguments() -> None:
    assert parse_command("  hi there ") == parse_command("/sms hi there")
    assert parse_command("hi there").text == "hi there"
    assert parse_command("/sms /not a command").text == "/not a command"
    chat = parse_command("/chat whatsapp Yes please")
    assert (chat.kind, chat.channel, chat.text, chat.payload) == (
        "chat",
        "whatsapp",
        "Yes please",
        None,
    )
    button = parse_command("/button whatsapp yes")
    assert (button.kind, button.channel, button.payload, button.text) == (
        "button",
        "whatsapp",
        "yes",
        None,
    )
    assert parse_command("/http").body == {}
    assert parse_command('/HTTP {"a": [1]}').body == {"a": [1]}
    assert parse_command("/dtmf *1#").value == "*1#"
    assert parse_command("/save my file.json").value == "my file.json"
    assert parse_command("/exit").kind == "quit"
    for bad in ("/from a b", "/data x", "/save", "/button whatsapp", "/sms", "/dtmf"):
        with pytest.raises(CommandError):
            parse_command(bad)


# --------------------------------------------------------------------------------------------
# The README


def test_the_readme_transcript_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Simulating a flow in the terminal") :]
    block = section[section.index("```text\n") + len("```text\n") :]
    command, *transcript = block[: block.index("```")].splitlines()
    assert command == "$ relayflow simulate src/relayflow/console/static/gallery/survey.json"
    typed = [line[2:] for line in transcript if line.startswith("> ")]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    result = simulate(str(SURVEY), stdin="\n".join(typed) + "\n")
    assert result.exit_code == 0, result.output
    assert lines_of(result) == transcript
    assert CliRunner().invoke(app, ["test", "flows/survey-timeout.flowtest.json"]).exit_code == 0
