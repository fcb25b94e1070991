"""Keep the README true: the error table is generated from the code."""

from pathlib import Path

from relayflow.errors import error_table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_error_table_is_generated_from_the_code() -> None:
    text = README.read_text()
    start = text.index("<!-- error-table:start -->\n") + len("<!-- error-table:start -->\n")
    end = text.index("\n<!-- error-table:end -->")
    assert text[start:end] == error_table_markdown()


def test_readme_quick_start_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text
