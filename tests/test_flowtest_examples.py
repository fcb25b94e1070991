"""The example flow tests (examples/flowtests) pass, and every console template has one, so
`make test` proves the templates and the README's quick-start flow still do what they say."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.flowtest import invoke

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "flowtests"
GALLERY = ROOT / "src" / "relayflow" / "console" / "static" / "gallery"


def test_the_examples_pass() -> None:
    result = invoke(str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith(" passed, 0 failed")


def test_every_console_template_has_an_example() -> None:
    referenced = set()
    for file in EXAMPLES.glob("*.flowtest.json"):
        definition = json.loads(file.read_text())["definition"]
        if isinstance(definition, str):
            referenced.add((file.parent / definition).resolve())
    templates = {path.resolve() for path in GALLERY.glob("*.json")}
    assert templates, "no console templates found"
    assert templates <= referenced, sorted(str(p) for p in templates - referenced)
