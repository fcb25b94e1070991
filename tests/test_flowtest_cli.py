"""`relayflow test PATH... [--junit-xml FILE] [-k SUBSTRING] [--update]`, in-process: output,
exit codes, selection, JUnit XML and writing expectations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.support.definitions import sms_definition
from tests.support.flowtest import PHONE, definition, invoke, sms, write_test


def auto_reply_test(name: str, expected_text: str) -> dict[str, Any]:
    return {
        "name": name,
        "definition": sms_definition(text="Thanks!"),
        "script": [{"do": "inbound_sms", "from": PHONE, "text": "hi"}],
        "expect": {"outbox": [{"to": PHONE, "text": expected_text}]},
    }


def suite(directory: Path) -> tuple[Path, Path]:
    passing = write_test(directory, auto_reply_test("reply passes", "Thanks!"), "a.flowtest.json")
    failing = write_test(directory, auto_reply_test("reply fails", "Thanks"), "b.flowtest.json")
    return passing, failing


def test_all_passing_exits_0_with_a_line_per_test(tmp_path: Path) -> None:
    file = write_test(tmp_path, auto_reply_test("reply passes", "Thanks!"))
    result = invoke(str(file))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["PASSED reply passes", "1 passed, 0 failed"]


def test_a_failure_exits_1_with_a_readable_account(tmp_path: Path) -> None:
    _, failing = suite(tmp_path)
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == ["PASSED reply passes", "FAILED reply fails"]
    assert "FAILURES" in lines[3]
    assert "reply fails" in lines[4]
    assert lines[5] == str(failing)
    assert lines[6] == '  expect.outbox[0].text: expected "Thanks", got "Thanks!"'
    assert f'      [0] sms to {PHONE}: "Thanks!"' in lines
    assert lines[-1] == "1 passed, 1 failed"


def test_k_selects_by_a_substring_of_the_name(tmp_path: Path) -> None:
    suite(tmp_path)
    result = invoke(str(tmp_path), "-k", "PASSES")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "PASSED reply passes",
        "1 deselected by -k",
        "1 passed, 0 failed",
    ]
    assert invoke(str(tmp_path), "-k", "b.flowtest").exit_code == 1  # the file's name too
    nothing = invoke(str(tmp_path), "-k", "nothing like it")
    assert nothing.exit_code == 0
    assert nothing.stdout.splitlines()[-1] == "0 passed, 0 failed"


def test_junit_xml(tmp_path: Path) -> None:
    passing, failing = suite(tmp_path / "tests")
    report = tmp_path / "report.xml"
    result = invoke(str(tmp_path / "tests"), "--junit-xml", str(report))
    assert result.exit_code == 1
    root = ET.fromstring(report.read_bytes())
    assert root.tag == "testsuites"
    [testsuite] = root
    assert testsuite.attrib["name"] == "relayflow"
    assert (testsuite.attrib["tests"], testsuite.attrib["failures"]) == ("2", "1")
    ok, bad = testsuite.findall("testcase")
    assert ok.attrib["name"] == "reply passes"
    assert ok.attrib["file"] == str(passing)
    assert ok.attrib["classname"].endswith("tests.a")
    assert float(ok.attrib["time"]) >= 0
    assert list(ok) == []
    assert bad.attrib["file"] == str(failing)
    [failure] = bad.findall("failure")
    assert failure.attrib["message"] == 'expect.outbox[0].text: expected "Thanks", got "Thanks!"'
    assert failure.text is not None
    assert "outbox: 1" in failure.text


def test_update_writes_expectations_then_the_file_passes(tmp_path: Path) -> None:
    document = {
        "name": "greets",
        "definition": definition([sms("hi", "Hello {{data.name}}")]),
        "script": [
            {"do": "http_trigger", "body": {"phone": PHONE, "name": "Ann"}},
            {"expect": {"outbox": [{"text": "Hello Ann"}]}},
        ],
        "expect": {"outbox": [{"text": "Hello Bo"}], "instances": []},
        "account": "acme",
    }
    file = write_test(tmp_path, document)
    assert invoke(str(file)).exit_code == 1

    result = invoke(str(file), "--update")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "PASSED greets",
        f"updated {file}",
        "1 passed, 0 failed",
    ]
    text = file.read_text()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "name": "greets",\n  "definition": {\n')
    updated = json.loads(text)
    assert list(updated) == ["name", "definition", "script", "expect", "account"]
    assert updated["script"] == document["script"]
    assert list(updated["expect"]) == ["outbox", "instances", "httpCalls"]
    [message] = updated["expect"]["outbox"]
    assert set(message) == {"channel", "to", "text", "subAccountId", "request"}
    assert message["text"] == "Hello Ann"
    [instance] = updated["expect"]["instances"]
    assert list(instance) == ["status", "data", "version", "errors"]
    assert instance["status"] == "Complete"
    assert updated["expect"]["httpCalls"] == []

    again = invoke(str(file))
    assert again.exit_code == 0, again.output
    unchanged = invoke(str(file), "--update")
    assert unchanged.stdout.splitlines() == ["PASSED greets", "1 passed, 0 failed"]
    assert file.read_text() == text


def test_update_creates_a_missing_expect(tmp_path: Path) -> None:
    file = write_test(
        tmp_path,
        {
            "definition": sms_definition(),
            "script": [{"do": "inbound_sms", "from": PHONE, "text": "x"}],
        },
    )
    assert invoke(str(file), "--update").exit_code == 0
    expect = json.loads(file.read_text())["expect"]
    assert [m["text"] for m in expect["outbox"]] == ["Thanks!"]
    assert invoke(str(file)).exit_code == 0


def test_update_does_not_hide_checkpoint_failures_or_refused_actions(tmp_path: Path) -> None:
    checkpoint = write_test(
        tmp_path,
        {
            "definition": sms_definition(),
            "script": [
                {"do": "inbound_sms", "from": PHONE, "text": "x"},
                {"expect": {"outbox": []}},
            ],
        },
        "a.flowtest.json",
    )
    refused = write_test(
        tmp_path,
        {"definition": sms_definition(), "script": [{"do": "dtmf", "digits": "1"}]},
        "b.flowtest.json",
    )
    before = refused.read_text()
    result = invoke(str(tmp_path), "--update")
    assert result.exit_code == 1
    assert f"updated {checkpoint}" in result.stdout
    assert f"updated {refused}" not in result.stdout
    assert "script[1].expect.outbox: expected 0 entries, got 1" in result.stdout
    assert "script[0] (dtmf): dtmf: no say&capture call has been made" in result.stdout
    assert refused.read_text() == before
