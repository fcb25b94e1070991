"""`relayflow test --update`: write what actually happened into a test file's final `expect`.

Only `expect.outbox`, `expect.instances` and `expect.httpCalls` are replaced; everything else in
the file (and its key order) is kept, so an update shows up in review as a diff of expectations.
Instances are written with the keys authors match on (status, data, version, errors): their ids
and start times add nothing a reviewer needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relayflow.testing.runner import FlowTestResult

INSTANCE_KEYS = ("status", "data", "version", "errors")


def updated_document(result: FlowTestResult) -> dict[str, Any]:
    """The test file's document with its final `expect` holding the actual state."""
    document = dict(result.test.document)
    expect = document.get("expect")
    expect = dict(expect) if isinstance(expect, dict) else {}
    expect["outbox"] = result.outbox
    expect["instances"] = [
        {key: instance[key] for key in INSTANCE_KEYS if key in instance}
        for instance in result.instances
    ]
    expect["httpCalls"] = result.http_calls
    document["expect"] = expect
    return document


def dump(document: dict[str, Any]) -> str:
    """Pretty JSON as people keep it in repositories: 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_update(result: FlowTestResult) -> bool:
    """Write the actual state into the file; True when the file changed."""
    file: Path = result.test.file
    text = dump(updated_document(result))
    try:
        if file.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    file.write_text(text, encoding="utf-8")
    return True
