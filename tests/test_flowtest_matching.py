"""The matching rules of flow-test expectations (issue 11) and the exact lines they print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relayflow.testing.matching import check_expectation, differences, json_equal
from relayflow.testing.report import failure_account
from tests.support.flowtest import PHONE, definition, run_document, sms

STATE: dict[str, list[Any]] = {
    "outbox": [
        {"channel": "sms", "to": PHONE, "text": "Hi", "subAccountId": "a", "request": {"x": 1}},
        {"channel": "sms", "to": PHONE, "text": "Thanks", "subAccountId": "a", "request": {}},
    ],
    "instances": [
        {"workflowId": "w1", "status": "Complete", "data": {"n": 1}, "version": 1, "errors": []},
        {"workflowId": "w2", "status": "Complete", "data": {}, "version": 1, "errors": []},
        {"workflowId": "w3", "status": "Runnable", "data": {}, "version": 1, "errors": []},
    ],
    "httpCalls": [],
}


# Objects: partial, recursive


def test_an_object_matches_when_every_key_it_names_matches() -> None:
    actual = {"status": "Complete", "data": {"a": 1, "b": {"c": 2, "d": 3}}, "version": 1}
    assert differences({"data": {"b": {"c": 2}}}, actual) == []
    assert differences({}, actual) == []


def test_a_key_that_differs_is_named_with_its_path() -> None:
    actual = {"data": {"b": {"c": 2}}}
    assert differences({"data": {"b": {"c": 3}}}, actual, "instances[0]") == [
        "instances[0].data.b.c: expected 3, got 2"
    ]


def test_a_missing_key_is_a_difference() -> None:
    assert differences({"data": {"answer": "yes"}}, {"data": {}}, "instances[0]") == [
        'instances[0].data.answer: expected "yes", but there is no "answer"'
    ]


def test_an_expected_null_does_not_match_a_missing_key() -> None:
    assert differences({"answer": None}, {}, "data") == [
        'data.answer: expected null, but there is no "answer"'
    ]
    assert differences({"answer": None}, {"answer": None}, "data") == []


def test_keys_that_are_not_identifiers_are_quoted_in_paths() -> None:
    assert differences({"first name": "Ann"}, {"first name": "Bo"}, "data") == [
        'data["first name"]: expected "Ann", got "Bo"'
    ]


def test_an_object_against_a_non_object() -> None:
    assert differences({"a": 1}, "text", "data") == ['data: expected an object, got "text"']
    assert differences({"a": 1}, [1], "data") == ["data: expected an object, got [1]"]


# Lists: same length, element by element


def test_a_list_matches_element_by_element_in_order() -> None:
    assert differences([1, {"a": 2}], [1, {"a": 2, "b": 3}], "x") == []
    assert differences([2, 1], [1, 2], "x") == [
        "x[0]: expected 2, got 1",
        "x[1]: expected 1, got 2",
    ]


def test_a_shorter_actual_list_names_what_did_not_happen() -> None:
    assert differences([1, 2, 3], [1], "tags") == [
        "tags: expected 3 entries, got 1",
        "tags[1]: expected 2, but it did not happen",
        "tags[2]: expected 3, but it did not happen",
    ]


def test_a_longer_actual_list_names_what_was_not_expected() -> None:
    assert differences([{"a": 1}], [{"a": 2}, {"a": 3}], "x") == [
        "x: expected 1 entry, got 2",
        "x[0].a: expected 1, got 2",
        'x[1]: not expected: {"a": 3}',
    ]


def test_an_empty_list_matches_only_an_empty_list() -> None:
    assert differences([], [], "errors") == []
    assert differences([], [{"step": "s", "message": "m"}], "errors") == [
        "errors: expected 0 entries, got 1",
        'errors[0]: not expected: {"step": "s", "message": "m"}',
    ]


def test_a_list_against_a_non_list() -> None:
    assert differences([1], {"0": 1}, "x") == ['x: expected a list, got {"0": 1}']


# Scalars: JSON values


@pytest.mark.parametrize(
    ("expected", "actual"),
    [(1, 1), (1, 1.0), (1.0, 1), (0, -0.0), ("a", "a"), (None, None), (True, True), (False, False)],
)
def test_equal_json_scalars(expected: Any, actual: Any) -> None:
    assert json_equal(expected, actual)
    assert differences(expected, actual, "v") == []


@pytest.mark.parametrize(
    ("expected", "actual", "line"),
    [
        (1, "1", 'v: expected 1, got "1"'),
        ("1", 1, 'v: expected "1", got 1'),
        (True, 1, "v: expected true, got 1"),
        (1, True, "v: expected 1, got true"),
        (False, 0, "v: expected false, got 0"),
        (None, 0, "v: expected null, got 0"),
        (None, "", 'v: expected null, got ""'),
        ("a", "A", 'v: expected "a", got "A"'),
        (1, 1.5, "v: expected 1, got 1.5"),
        (1, {"a": 1}, 'v: expected 1, got {"a": 1}'),
        ("x", ["x"], 'v: expected "x", got ["x"]'),
    ],
)
def test_different_json_scalars(expected: Any, actual: Any, line: str) -> None:
    assert not json_equal(expected, actual)
    assert differences(expected, actual, "v") == [line]


def test_long_values_are_shortened() -> None:
    [line] = differences("short", "x" * 500, "text")
    assert line.startswith('text: expected "short", got "xxx')
    assert line.endswith("…")
    assert len(line) < 260


# The three lists of `expect`


def test_outbox_instances_and_http_calls_must_list_every_entry() -> None:
    expect = {"instances": [{"status": "Complete"}, {"status": "Complete"}]}
    assert check_expectation(expect, STATE) == [
        "instances: expected 2 entries, got 3",
        'instances[2]: not expected: {"status": "Runnable", "data": {}, "version": 1, '
        '"errors": []}',
    ]


def test_a_key_left_out_of_expect_is_not_checked() -> None:
    assert check_expectation({}, STATE) == []
    assert check_expectation({"outbox": [{}, {"text": "Thanks"}]}, STATE) == []


def test_an_empty_list_in_expect_means_nothing_happened() -> None:
    assert check_expectation({"httpCalls": []}, STATE) == []
    assert check_expectation({"outbox": []}, STATE)[0] == "outbox: expected 0 entries, got 2"


def test_the_message_names_the_entry_the_key_and_both_values() -> None:
    expect = {"outbox": [{"text": "Hi"}, {"text": "Thanks!", "request": {"y": None}}]}
    assert check_expectation(expect, STATE) == [
        'outbox[1].text: expected "Thanks!", got "Thanks"',
        'outbox[1].request.y: expected null, but there is no "y"',
    ]


def test_the_report_of_a_failing_file_shows_the_differences_and_what_happened(
    tmp_path: Path,
) -> None:
    result = run_document(
        tmp_path,
        {
            "name": "greeting",
            "definition": definition([sms("hi", "Thanks", destination=PHONE)]),
            "script": [{"do": "http_trigger", "body": {}}],
            "expect": {"outbox": [{"text": "Thanks!"}], "instances": [{}, {}]},
        },
    )
    lines = failure_account(result)
    assert lines[0].strip("_ ") == "greeting"
    assert lines[1] == str(tmp_path / "t.flowtest.json")
    assert lines[2:6] == [
        '  expect.outbox[0].text: expected "Thanks!", got "Thanks"',
        "  expect.instances: expected 2 entries, got 1",
        "  expect.instances[1]: expected {}, but it did not happen",
        "  what happened:",
    ]
    assert f'      [0] sms to {PHONE}: "Thanks"' in lines
    assert any(line.startswith("      [0] Complete, data {") for line in lines)
