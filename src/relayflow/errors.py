"""Error codes: the one home for every code relayflow returns.

The README's error-code table is generated from `ErrorCode` (``relayflow docs errors``), so the
documentation cannot drift from the code. Codes 1000, 1300 and 5001 are 8x8's documented ones;
the rest follow 8x8's platform-wide numbering (DESIGN.md §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """Every error code, with its HTTP status and meaning in `ERROR_INFO`."""

    INVALID_ID = 1000
    INVALID_PARAMETER = 1003
    INVALID_BODY = 1004
    UNAUTHORIZED = 1200
    FORBIDDEN = 1201
    DEFINITION_NOT_FOUND = 1300
    WORKFLOW_NOT_FOUND = 1301
    RESOURCE_NOT_FOUND = 1302
    METHOD_NOT_ALLOWED = 1305
    INVALID_TRANSITION = 1310
    PAYLOAD_TOO_LARGE = 1400
    RATE_LIMITED = 1429
    INTERNAL_ERROR = 2000
    UNAVAILABLE = 2001
    # Definition validation: one code per rule.
    NAME_REQUIRED = 5001
    INVALID_TRIGGER = 5002
    INVALID_STATUS = 5003
    STEPS_REQUIRED = 5004
    STEP_ID_REQUIRED = 5005
    DUPLICATE_STEP_ID = 5006
    UNKNOWN_STEP_TYPE = 5007
    UNKNOWN_NEXT_STEP = 5008
    REQUIRED_PROPERTY_MISSING = 5009
    INVALID_ENUM_VALUE = 5010
    INVALID_TIMESPAN = 5011
    INVALID_EXPRESSION = 5012
    EXPRESSION_TOO_LONG = 5013
    FORBIDDEN_EXPRESSION = 5014
    BOTH_NEXT_STEP_AND_SELECT = 5015
    INVALID_TYPE = 5016
    TOO_MANY_STEPS = 5017
    INVALID_VALUE = 5018


@dataclass(frozen=True)
class ErrorInfo:
    http_status: int
    meaning: str


ERROR_INFO: dict[ErrorCode, ErrorInfo] = {
    ErrorCode.INVALID_ID: ErrorInfo(
        400, "Invalid definition id or workflow id (not a UUID / 24-hex id)."
    ),
    ErrorCode.INVALID_PARAMETER: ErrorInfo(
        400, "Invalid query or path parameter (e.g. `limit` outside 1..500)."
    ),
    ErrorCode.INVALID_BODY: ErrorInfo(400, "Request body is not valid JSON or not a JSON object."),
    ErrorCode.UNAUTHORIZED: ErrorInfo(401, "Missing, unknown or revoked API key."),
    ErrorCode.FORBIDDEN: ErrorInfo(403, "The API key belongs to another account."),
    ErrorCode.DEFINITION_NOT_FOUND: ErrorInfo(404, "Definition (or definition version) not found."),
    ErrorCode.WORKFLOW_NOT_FOUND: ErrorInfo(404, "Workflow instance not found."),
    ErrorCode.RESOURCE_NOT_FOUND: ErrorInfo(404, "No such endpoint."),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorInfo(405, "HTTP method not allowed on this endpoint."),
    ErrorCode.INVALID_TRANSITION: ErrorInfo(
        400, "The workflow's status does not allow this command (e.g. resume a Complete one)."
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorInfo(
        413, "Request body larger than the limit (1 MB by default)."
    ),
    ErrorCode.RATE_LIMITED: ErrorInfo(429, "Too many requests; retry after `Retry-After` seconds."),
    ErrorCode.INTERNAL_ERROR: ErrorInfo(500, "Unexpected server error; quote the `errorId`."),
    ErrorCode.UNAVAILABLE: ErrorInfo(
        503,
        "The database is unreachable for a moment (restart, failover) or every pooled "
        "connection stayed busy for `RELAYFLOW_DB_POOL_TIMEOUT_SECONDS` (overload); retry "
        "after `Retry-After`.",
    ),
    ErrorCode.NAME_REQUIRED: ErrorInfo(400, "Workflow name is required."),
    ErrorCode.INVALID_TRIGGER: ErrorInfo(
        400, "`trigger` missing or not one of the supported triggers."
    ),
    ErrorCode.INVALID_STATUS: ErrorInfo(400, "`status` is not `enabled` or `disabled`."),
    ErrorCode.STEPS_REQUIRED: ErrorInfo(
        400, "`definition.steps` (or an `If` branch) is missing or empty."
    ),
    ErrorCode.STEP_ID_REQUIRED: ErrorInfo(400, "A step has no `id`."),
    ErrorCode.DUPLICATE_STEP_ID: ErrorInfo(
        400, "Two steps share an id (ids are unique across `do` too)."
    ),
    ErrorCode.UNKNOWN_STEP_TYPE: ErrorInfo(400, "`stepType` missing or not a known step type."),
    ErrorCode.UNKNOWN_NEXT_STEP: ErrorInfo(
        400, "`nextStepId` / `selectNextStep` names a step that does not exist."
    ),
    ErrorCode.REQUIRED_PROPERTY_MISSING: ErrorInfo(
        400, "A required input or property of a step is missing."
    ),
    ErrorCode.INVALID_ENUM_VALUE: ErrorInfo(400, "A value is not one of the allowed values."),
    ErrorCode.INVALID_TIMESPAN: ErrorInfo(
        400, "A duration/timeout is not a `[d.]hh:mm:ss` timespan."
    ),
    ErrorCode.INVALID_EXPRESSION: ErrorInfo(
        400, "A `{{ }}` expression is malformed (e.g. `{{` without `}}`)."
    ),
    ErrorCode.EXPRESSION_TOO_LONG: ErrorInfo(400, "An expression is longer than 1000 characters."),
    ErrorCode.FORBIDDEN_EXPRESSION: ErrorInfo(
        400, "An expression uses a forbidden construct (assignment, function, loop, ...)."
    ),
    ErrorCode.BOTH_NEXT_STEP_AND_SELECT: ErrorInfo(
        400, "A step sets both `nextStepId` and `selectNextStep`."
    ),
    ErrorCode.INVALID_TYPE: ErrorInfo(400, "A property has the wrong JSON type."),
    ErrorCode.TOO_MANY_STEPS: ErrorInfo(
        400, "The definition has more steps than the configured limit (500)."
    ),
    ErrorCode.INVALID_VALUE: ErrorInfo(
        400, "A value is out of range or malformed (URL, timeout, ...)."
    ),
}


@dataclass(frozen=True)
class Problem:
    """One validation problem: what is wrong, where (JSON path), and its code."""

    code: ErrorCode
    message: str
    path: str

    def as_json(self) -> dict[str, Any]:
        return {"code": int(self.code), "message": self.message, "path": self.path}


@dataclass
class ApiError(Exception):
    """An error that becomes an 8x8 error body with the code's HTTP status."""

    code: ErrorCode
    message: str
    problems: list[Problem] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return ERROR_INFO[self.code].http_status


def error_table_markdown() -> str:
    """The README's error-code table, generated so docs and code cannot disagree."""
    lines = ["| code | HTTP | meaning |", "|---|---|---|"]
    for code in ErrorCode:
        info = ERROR_INFO[code]
        lines.append(f"| {int(code)} | {info.http_status} | {info.meaning} |")
    return "\n".join(lines)
