"""The request body of create/update (`definitionInput`) and its `definition` object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from relayflow.model.fields import Text
from relayflow.model.steps import DefinitionStatus, Step, Trigger


class DefinitionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Text = Field(
        description="Descriptive name; need not be unique.",
        json_schema_extra={"pattern": r"\S"},  # blank is refused (5001): not only missing
    )
    steps: list[Step] = Field(min_length=1, description="Steps; the first one is the entry point.")


class DefinitionInput(BaseModel):
    """What clients POST/PUT. Property names are matched case-insensitively (`subaccountId`)."""

    model_config = ConfigDict(extra="ignore")

    subAccountId: Text | None = Field(
        default=None,
        description="If set, message triggers start this definition only for that subaccount.",
    )
    trigger: Trigger
    status: DefinitionStatus = Field(
        default=DefinitionStatus.DISABLED,
        description="`enabled` definitions start on their trigger; default `disabled`.",
    )
    definition: DefinitionBody
