"""Readers for the deployment files, for tests/test_deploy.py (no container engine here).

A Dockerfile reader (instructions, flags, line continuations, exec and shell forms), a
.dockerignore matcher (Docker's rules: last matching pattern wins, `!` re-includes, a pattern
matching a folder matches everything in it), compose's `${VAR...}` interpolation, and the
metric and label names of a PromQL expression.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "ONBUILD",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
        "RUN",
    }
)


class DockerfileError(ValueError):
    """The text is not a Dockerfile this reader understands."""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    flags: dict[str, str]
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each instruction, continuations joined, comments dropped."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue  # comments (also inside a continuation) and blank continuation lines
        if not stripped:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise DockerfileError(f"line {start}: the file ends inside a line continuation")
    return lines


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args
    while (match := re.match(r"--([a-z-]+)(?:=(\S*))?\s+", rest)) is not None:
        flags[match.group(1)] = match.group(2) or ""
        rest = rest[match.end() :]
    return flags, rest.strip()


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile; raises DockerfileError for what Docker would refuse."""
    stages: list[Stage] = []
    for line, logical in _logical_lines(text):
        keyword, _, raw_args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword not in INSTRUCTIONS:
            raise DockerfileError(f"line {line}: unknown instruction {keyword!r}")
        flags, args = _split_flags(raw_args.strip() + " ")
        if not args:
            raise DockerfileError(f"line {line}: {keyword} needs arguments")
        instruction = Instruction(keyword, flags, args, line)
        if keyword == "FROM":
            words = args.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise DockerfileError(f"line {line}: FROM image [AS name], not {args!r}")
            stages.append(Stage(words[0], words[2] if len(words) == 3 else None))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"line {line}: {keyword} before the first FROM")
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError("no FROM instruction")
    return stages


def command_words(args: str) -> list[str]:
    """The words of an exec-form (JSON array) or shell-form command."""
    if args.startswith("["):
        try:
            words = json.loads(args)
        except json.JSONDecodeError as error:
            raise DockerfileError(f"exec form is not a JSON array: {args!r}") from error
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DockerfileError(f"exec form must be an array of strings: {args!r}")
        return words
    return shlex.split(args)


def env_pairs(args: str) -> dict[str, str]:
    """ENV key=value ... (the legacy `ENV key value` form too)."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"ENV {args!r}: {word!r} is not key=value")
        pairs[key] = value
    return pairs


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes?, regex) per pattern line of a .dockerignore."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line[1:].strip() if include else line
        pattern = pattern.strip("/") or "."
        rules.append((not include, _pattern_regex(pattern)))
    return rules


def is_ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for excludes, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = excludes
    return ignored


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolations(text: str) -> list[tuple[str, str, str]]:
    """(variable, operator, argument) of every `${VAR}`, `${VAR:-x}`, `${VAR:?msg}`."""
    return [(m.group(1), m.group(2) or "", m.group(3) or "") for m in _INTERPOLATION.finditer(text)]


def interpolate(text: str, environment: dict[str, str]) -> str:
    """Compose's substitution; a required variable that is unset or empty raises KeyError."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        value = environment.get(name)
        if operator in (":?", "?") and not value:
            raise KeyError(f"{name}: {argument}")
        if operator in (":-", "-") and not value:
            return argument
        return value or ""

    return _INTERPOLATION.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


_PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan"}
)
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:]|\s*\()")


def _without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)


def promql_metrics(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and label names left out)."""
    bare = _without_strings(expr)
    bare = _GROUPING.sub(" ", bare)
    bare = _MATCHERS.sub(" ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    return {name for name in _IDENTIFIER.findall(bare) if name not in _PROMQL_KEYWORDS}


def promql_labels(expr: str) -> set[str]:
    """Label names an expression groups by or matches on."""
    bare = _without_strings(expr)
    labels = {
        label.strip()
        for match in _GROUPING.finditer(bare)
        for label in match.group(2).split(",")
        if label.strip()
    }
    for match in _MATCHERS.finditer(bare):
        for matcher in match.group(1).split(","):
            name = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", matcher)
            if name is not None:
                labels.add(name.group(1))
    return labels
