"""Request bodies that more than one face accepts (the REST API and the console): one model
each, so both validate alike, and one way to turn pydantic's complaint into an 8x8 error."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from relayflow.errors import ApiError, ErrorCode

M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], body: Any) -> M:
    """`body` validated by `model`; every problem in one 400 (code 1004) otherwise."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc']) or 'body'}: {detail['msg']}"
            for detail in error.errors()
        )
        raise ApiError(ErrorCode.INVALID_BODY, f"Invalid request body: {problems}.") from None


class InboundSms(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_: str = Field(
        alias="from", min_length=1, max_length=64, description="Sender, e.g. +6591234567."
    )
    to: str = Field(min_length=1, max_length=64, description="Your virtual number or sender id.")
    text: str = Field(max_length=10_000)
    subAccountId: str | None = Field(default=None, max_length=200)


class InboundChat(BaseModel):
    # A message has text, a button press a payload: the schema says so too (for generated
    # clients and fuzzers), not only the validator.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["text"],
                    "properties": {"text": {"type": "string", "maxLength": 10_000}},
                },
                {
                    "required": ["payload"],
                    "properties": {"payload": {"type": "string", "maxLength": 1000}},
                },
            ]
        },
    )
    channel: str = Field(min_length=1, max_length=40, description="whatsapp, viber, line, RCS, ...")
    from_: str = Field(
        alias="from", min_length=1, max_length=128, description="Phone number or user id."
    )
    text: str | None = Field(default=None, max_length=10_000)
    payload: str | None = Field(
        default=None, max_length=1000, description="Quick-reply button payload."
    )
    subAccountId: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _has_content(self) -> InboundChat:
        if self.text is None and self.payload is None:
            raise ValueError("set 'text' and/or 'payload'")
        return self


class Dtmf(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["clientRequestId"],
                    "properties": {
                        "clientRequestId": {"type": "string", "minLength": 1, "maxLength": 200}
                    },
                },
                {
                    "required": ["uid"],
                    "properties": {"uid": {"type": "string", "minLength": 1, "maxLength": 200}},
                },
            ]
        },
    )
    clientRequestId: str | None = Field(default=None, min_length=1, max_length=200)
    uid: str | None = Field(default=None, min_length=1, max_length=200)
    digits: str = Field(pattern=r"^[0-9*#]{1,32}$", description="Keys pressed.")

    @model_validator(mode="after")
    def _has_key(self) -> Dtmf:
        if not self.clientRequestId and not self.uid:
            raise ValueError("set 'clientRequestId' or 'uid' of the voice message")
        return self
