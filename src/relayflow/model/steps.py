"""The definition language: one pydantic model per step type of the 8x8 seed document.

These models describe the *canonical* form (exact property names, `stepType` spelled as
documented); `model.tolerant` turns what 8x8 clients actually send into that form first.
`RESULT_PROPERTIES` lists what a step exposes as `step.*` to its `outputs` and `selectNextStep`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from relayflow.expressions.template import has_expression
from relayflow.model.fields import (
    IntegerOrExpression,
    ObjectOrExpression,
    Text,
    Timespan,
    enum_or_expression,
    enum_schema,
)

MAX_HTTP_TIMEOUT_SECONDS = 30


class Trigger(StrEnum):
    INBOUND_SMS = "inbound_sms"
    INBOUND_CHAT_APPS = "inbound_chat_apps"
    HTTP_REQUEST = "http_request"


class DefinitionStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class SmsEncoding(StrEnum):
    AUTO = "AUTO"
    GSM7 = "GSM7"
    UCS2 = "UCS2"


class VoiceAction(StrEnum):
    SAY = "say"
    SAY_AND_CAPTURE = "say&capture"
    PLAY_FILE = "playFile"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


SmsEncodingField = Annotated[
    str,
    PlainValidator(enum_or_expression(e.value for e in SmsEncoding)),
    WithJsonSchema(
        enum_schema([e.value for e in SmsEncoding], "Message encoding (any letter case).")
    ),
]
VoiceActionField = Annotated[
    str,
    PlainValidator(enum_or_expression(e.value for e in VoiceAction)),
    WithJsonSchema(enum_schema([e.value for e in VoiceAction], "Voice API action.")),
]
HttpMethodField = Annotated[
    str,
    PlainValidator(enum_or_expression(e.value for e in HttpMethod)),
    WithJsonSchema(enum_schema([e.value for e in HttpMethod], "HTTP method (any letter case).")),
]

Condition = Annotated[
    str | bool | None,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "boolean"}, {"type": "null"}],
            "description": "`{{ expression }}`; `null` marks the default branch.",
        }
    ),
]
SelectNextStep = dict[str, Condition]
Outputs = dict[str, Any]


class Inputs(BaseModel):
    # Unknown input keys are kept: 8x8 adds API fields over time and exports carry them.
    model_config = ConfigDict(extra="allow")


class StepBase(BaseModel):
    """Fields every step has. Unknown step-level keys (UI layout metadata) are dropped."""

    model_config = ConfigDict(extra="ignore")
    RESULT_PROPERTIES: ClassVar[tuple[str, ...]] = ()

    id: Text = Field(
        description="Step id, unique within the definition (including `do`).",
        json_schema_extra={"pattern": r"\S"},
    )
    outputs: Outputs | None = Field(
        default=None, description="`{contextKey: expression}` written into `data` after the step."
    )
    nextStepId: Text | None = Field(default=None, description="Step to run next.")
    selectNextStep: SelectNextStep | None = Field(
        default=None, description="`{stepId: condition}`: every true condition starts that step."
    )


class SmsInputs(Inputs):
    subAccountId: Text = Field(description="SMS-enabled 8x8 subaccount.")
    destination: Text = Field(description="Phone number of the recipient.")
    text: Text = Field(description="Content of the SMS.")
    country: Text | None = Field(default=None, description="Two-letter country of the destination.")
    source: Text | None = Field(default=None, description="Sender id.")
    clientMessageId: Text | None = Field(default=None, description="Client-side message id.")
    encoding: SmsEncodingField | None = None
    scheduled: Text | None = Field(default=None, description="ISO-8601 time to send at.")
    expiry: Text | None = Field(default=None, description="ISO-8601 time after which not to send.")
    dlrCallbackUrl: Text | None = Field(default=None, description="Delivery-receipt callback URL.")


class SmsStep(StepBase):
    """Send an SMS through 8x8 (or the sandbox)."""

    RESULT_PROPERTIES = (
        "requestId",
        "umid",
        "status",
        "description",
        "destination",
        "encoding",
        "clientMessageId",
    )
    stepType: Literal["SMS"]
    inputs: SmsInputs


class ChatAppsInputs(Inputs):
    subAccountId: Text = Field(description="Chat-apps-enabled 8x8 subaccount.")
    user: ObjectOrExpression = Field(description='Recipient, e.g. `{"msisdn": "+65..."}`.')
    type: Text = Field(description="Content type: text, template, image, interactive, ...")
    content: ObjectOrExpression = Field(description="Message content for `type`.")
    clientMessageId: Text | None = Field(default=None, description="Client-side message id.")


class ChatAppsMessageStep(StepBase):
    """Send a WhatsApp / Viber / LINE / RCS ... message through 8x8 Chat Apps."""

    RESULT_PROPERTIES = ("requestId", "umid", "status", "description")
    stepType: Literal["ChatAppsMessage"]
    inputs: ChatAppsInputs


class HttpRequestInputs(Inputs):
    url: Text = Field(description="Absolute http(s) URL.")
    method: HttpMethodField
    headers: ObjectOrExpression | None = Field(default=None, description="Request headers.")
    parameters: ObjectOrExpression | None = Field(default=None, description="Query parameters.")
    body: Any = Field(default=None, description="JSON body (evaluated recursively).")
    timeoutSeconds: IntegerOrExpression | None = Field(
        default=None, description="Timeout in seconds (default 5, at most 30)."
    )

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        if has_expression(url):
            return url
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise PydanticCustomError(
                "invalid_value", "'{url}' is not an absolute http(s) URL", {"url": url}
            )
        return url.strip()

    @field_validator("timeoutSeconds")
    @classmethod
    def _timeout_in_range(cls, timeout: int | str | None) -> int | str | None:
        if isinstance(timeout, int) and not 1 <= timeout <= MAX_HTTP_TIMEOUT_SECONDS:
            raise PydanticCustomError(
                "invalid_value",
                "{timeout} is outside 1..{limit} seconds",
                {"timeout": timeout, "limit": MAX_HTTP_TIMEOUT_SECONDS},
            )
        return timeout


class HttpRequestStep(StepBase):
    """Call an HTTP API; non-2xx answers are results (`responseCode`), not faults."""

    RESULT_PROPERTIES = ("responseCode", "reasonPhrase", "responseBody")
    stepType: Literal["HttpRequest"]
    inputs: HttpRequestInputs


class BranchStep(StepBase):
    """Choose the next step(s): every true condition starts its step; `null` is the default."""

    stepType: Literal["Branch"]
    inputs: dict[str, Any] | None = None
    selectNextStep: SelectNextStep


class IfInputs(Inputs):
    condition: Condition = Field(description="`{{ expression }}`; when true the `do` branches run.")


class IfStep(StepBase):
    """Run the `do` branches when the condition is true, then continue."""

    stepType: Literal["If"]
    inputs: IfInputs
    do: list[Annotated[list[Step], Field(min_length=1)]] = Field(
        min_length=1, description="Branches; each starts at its first step."
    )


class WaitInputs(Inputs):
    duration: Timespan


class WaitStep(StepBase):
    """Pause the path durably for a timespan."""

    stepType: Literal["Wait"]
    inputs: WaitInputs


class WaitForReplyInputs(Inputs):
    from_: Text = Field(alias="from", description="Sender to wait for (msisdn or channel user id).")
    channel: Text = Field(description="Channel: sms, whatsapp, viber, line, RCS, ...")
    timeout: Timespan | None = Field(default=None, description="Default `1.00:00:00`.")

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)


class WaitForReplyStep(StepBase):
    """Wait until the customer replies on a channel, or the timeout passes (`step.reply` null)."""

    RESULT_PROPERTIES = ("reply",)
    stepType: Literal["WaitForReply"]
    inputs: WaitForReplyInputs


class VoiceMessageInputs(Inputs):
    subAccountId: Text | None = Field(default=None, description="Voice-enabled subaccount.")
    clientRequestId: Text | None = Field(default=None, description="Use `{{uuid()}}`.")
    action: VoiceActionField = Field(
        default=VoiceAction.SAY.value, description="8x8's schema default: `say`."
    )
    params: ObjectOrExpression = Field(description="Parameters of the voice action.")


class VoiceMessageStep(StepBase):
    """Call a phone and say / play a message, optionally capturing keypad digits."""

    RESULT_PROPERTIES = ("response",)
    stepType: Literal["VoiceMessage"]
    inputs: VoiceMessageInputs


class WaitForDtmfInputs(Inputs):
    dtmfRequestId: Text = Field(description="`clientRequestId` (or `uid`) of the voice message.")
    timeout: Timespan | None = Field(default=None, description="Default `1.00:00:00`.")


class WaitForDtmfStep(StepBase):
    """Wait for the digits captured by a `say&capture` voice message."""

    RESULT_PROPERTIES = ("dtmfData",)
    stepType: Literal["WaitForDTMF"]
    inputs: WaitForDtmfInputs


Step = Annotated[
    SmsStep
    | ChatAppsMessageStep
    | HttpRequestStep
    | BranchStep
    | IfStep
    | WaitStep
    | WaitForReplyStep
    | VoiceMessageStep
    | WaitForDtmfStep,
    Field(discriminator="stepType"),
]
IfStep.model_rebuild()

STEP_MODELS: dict[str, type[StepBase]] = {
    "SMS": SmsStep,
    "ChatAppsMessage": ChatAppsMessageStep,
    "HttpRequest": HttpRequestStep,
    "Branch": BranchStep,
    "If": IfStep,
    "Wait": WaitStep,
    "WaitForReply": WaitForReplyStep,
    "VoiceMessage": VoiceMessageStep,
    "WaitForDTMF": WaitForDtmfStep,
}
