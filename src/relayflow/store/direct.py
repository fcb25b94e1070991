"""Hot statements on SQLite, compiled once and run straight through the sqlite3 driver.

Why: on the development VM SQLAlchemy's execution layer costs ~28 µs per statement (execution
context, cache key, parameter and result processing) around a sqlite3 call of ~8 µs, and an
auto-reply runs ~25 statements. A statement marked with `hot()` keeps its SQLAlchemy form —
PostgreSQL and every non-inline connection run it unchanged — but on the inline SQLite
connection it is compiled once per parameter-key set into SQL text, a parameter order and a
row shape, and then costs little more than the driver call.

Only module-level statements may be marked: compiled statements are cached by the statement's
identity. Everything is read from SQLAlchemy's public API (the compiled SQL, its positional bind
names, each type's dialect implementation and its processors, the statement's exported columns).
A statement this module cannot run exactly as SQLAlchemy would (expanding IN lists, escaped
or post-compiled parameters, Python-side column defaults) is detected when it is compiled and
left to SQLAlchemy. Errors come out as SQLAlchemy's own exception types.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import BindParameter

HOT_OPTION = "relayflow_hot"
_REQUIRED = object()  # a parameter the caller must supply

StatementT = TypeVar("StatementT")


def hot(statement: StatementT) -> StatementT:
    """Mark a module-level statement for the direct SQLite path (see the module docstring)."""
    marked: StatementT = statement.execution_options(**{HOT_OPTION: True})  # type: ignore[attr-defined]
    return marked


def is_hot(statement: Any) -> bool:
    return isinstance(statement, Executable) and bool(
        statement.get_execution_options().get(HOT_OPTION)
    )


class DirectResult:
    """The part of SQLAlchemy's `CursorResult` the store uses, over rows already fetched."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


@dataclass(frozen=True)
class _CompiledStatement:
    statement: Any  # held so its id() cannot be reused while it is cached
    sql: str
    names: tuple[str, ...]  # bind names in positional order
    defaults: Mapping[str, Any]  # values bound inside the statement itself
    bind_processors: Mapping[str, Callable[[Any], Any]]
    row: Callable[..., Any] | None  # row factory; None for statements without rows
    result_processors: tuple[Callable[[Any], Any] | None, ...] | None

    def arguments(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name in self.names:
            value = parameters[name] if name in parameters else self.defaults[name]
            if value is _REQUIRED:
                raise KeyError(f"missing value for bind parameter '{name}'")
            processor = self.bind_processors.get(name)
            values.append(value if processor is None else processor(value))
        return tuple(values)

    def rows(self, raw: list[Any]) -> list[Any]:
        if self.row is None:
            return []
        if self.result_processors is None:
            return [self.row(*values) for values in raw]
        processors = self.result_processors
        return [
            self.row(
                *(
                    value if processor is None else processor(value)
                    for processor, value in zip(processors, values, strict=True)
                )
            )
            for values in raw
        ]


class _NotCompilable(Exception):
    """SQLAlchemy must run this statement itself."""


class CompiledStatements:
    """Hot statements compiled for one dialect, keyed by statement and key set."""

    def __init__(self, *, enabled: bool = True) -> None:
        """`enabled=False` (SQL echo on) sends everything through SQLAlchemy, which logs it."""
        self.enabled = enabled
        self._compiled: dict[tuple[int, frozenset[str]], _CompiledStatement | None] = {}
        self._refused: list[str] = []

    def refused(self) -> list[str]:
        """Hot statements SQLAlchemy had to run (one entry per statement and key set): a hot
        statement that lands here has lost its fast path."""
        return list(self._refused)

    def execute(
        self, connection: Connection, statement: Any, parameters: Any
    ) -> DirectResult | None:
        """Run `statement`; None when it must go through SQLAlchemy instead."""
        if not self.enabled:
            return None
        many = isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes)
        if many and not parameters:
            return None
        first: Mapping[str, Any] = parameters[0] if many else (parameters or {})
        if not isinstance(first, Mapping):
            return None
        compiled = self._lookup(connection, statement, first)
        if compiled is None or (many and compiled.row is not None):  # executemany returns no rows
            return None
        driver = connection.connection.dbapi_connection
        if driver is None:
            return None
        arguments: Any = None
        try:
            if many:
                arguments = [compiled.arguments(item) for item in parameters]
                cursor = driver.executemany(compiled.sql, arguments)
            else:
                arguments = compiled.arguments(first)
                cursor = driver.execute(compiled.sql, arguments)
            raw = cursor.fetchall() if cursor.description is not None else []
            rowcount = cursor.rowcount
            cursor.close()
        except connection.dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                compiled.sql,
                arguments,
                error,
                connection.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=connection.dialect,
            ) from error
        return DirectResult(compiled.rows(raw), rowcount)

    def _lookup(self, connection: Connection, statement: Any, parameters: Mapping[str, Any]) -> Any:
        """`statement` compiled for these keys, compiling it on first use; None when only
        SQLAlchemy can run it (remembered, so it is tried once)."""
        key = (id(statement), frozenset(parameters))
        compiled = self._compiled.get(key)
        if compiled is not None and compiled.statement is statement:
            return compiled
        if compiled is None and key in self._compiled:
            return None  # known to need SQLAlchemy
        try:
            compiled = _compile(connection, statement, parameters)
        except _NotCompilable:
            compiled = None
            self._refused.append(" ".join(str(statement).split())[:200])
        self._compiled[key] = compiled
        return compiled


def _row_type(keys: list[str]) -> Callable[..., Any]:
    """Rows read like SQLAlchemy's: by attribute, by index, unpacked."""
    return namedtuple("Row", keys)


def _compile(
    connection: Connection, statement: Any, parameters: Mapping[str, Any]
) -> _CompiledStatement:
    """SQL text, bind order and row shape, from SQLAlchemy's public compiler and type API."""
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(parameters))
    if (
        compiled.positiontup is None
        or compiled.escaped_bind_names
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or any(getattr(bind, "callable", None) for bind in compiled.binds.values())
    ):
        raise _NotCompilable
    defaults: dict[str, Any] = {}
    bind_processors: dict[str, Callable[[Any], Any]] = {}
    for name, bind in compiled.binds.items():
        if not isinstance(bind, BindParameter):
            raise _NotCompilable
        defaults[name] = _REQUIRED if bind.required else bind.effective_value
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            bind_processors[name] = processor
    row: Callable[..., Any] | None = None
    processors = None
    # A SELECT's columns, or an INSERT/UPDATE/DELETE's RETURNING ones (none without it).
    columns = list(statement.exported_columns) if statement.is_select or statement.is_dml else []
    if columns:
        try:
            row = _row_type(list(statement.exported_columns.keys()))
        except ValueError:  # names that cannot be attributes: SQLAlchemy's rows instead
            raise _NotCompilable from None
        found = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        processors = found if any(found) else None
    return _CompiledStatement(
        statement=statement,
        sql=str(compiled),
        names=tuple(compiled.positiontup),
        defaults=defaults,
        bind_processors=bind_processors,
        row=row,
        result_processors=processors,
    )
