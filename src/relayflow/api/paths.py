"""Path parameters of the routers, declared once with the formats they accept.

The formats are documented in `/openapi.json` but enforced by the handlers
(`check_definition_id`, `check_workflow_id`), which answer 8x8's code 1000 "Invalid id"
rather than FastAPI's generic parameter error.
"""

from __future__ import annotations

from typing import Any

from fastapi import Path

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
WORKFLOW_ID_PATTERN = r"^[0-9a-fA-F]{24}$"
UMID_MAX_LENGTH = 64


def definition_id_path() -> Any:
    return Path(
        description="Definition id (UUID; any case).",
        json_schema_extra={"format": "uuid", "pattern": UUID_PATTERN},
    )


def workflow_id_path() -> Any:
    return Path(
        description="Workflow id: 24 hex characters (any case).",
        json_schema_extra={"pattern": WORKFLOW_ID_PATTERN},
    )


def umid_path() -> Any:
    return Path(
        description="Message id (`umid`).",
        json_schema_extra={"minLength": 1, "maxLength": UMID_MAX_LENGTH},
    )
