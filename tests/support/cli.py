"""The `relayflow` command line run in-process (typer's CliRunner), and what its results must
look like: a success's stdout, or a clean failure (exit 1, `error:` on stderr, no traceback)."""

from __future__ import annotations

from click.testing import Result
from typer.testing import CliRunner

from relayflow.cli import app


def invoke(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def ok(result: Result) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
        f"exception: {result.exception!r}"
    )
    return result.stdout


def flat(text: str) -> str:
    """Rich wraps long messages at the console width; compare them on one line."""
    return " ".join(text.split())


def fails_cleanly(result: Result, *fragments: str) -> str:
    """Exit code 1, a message on stderr containing `fragments`, and no uncaught exception."""
    # An uncaught exception is caught by CliRunner (exit code 1 too), so tell them apart: a
    # deliberate exit is a SystemExit, anything else would have been a traceback for the user.
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == 1, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    message = flat(result.stderr)
    assert message.startswith("error:"), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in result.output
    return message
