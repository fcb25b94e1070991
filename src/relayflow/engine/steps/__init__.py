"""The step registry: one class per 8x8 step type (a test checks every type is registered)."""

from __future__ import annotations

from relayflow.engine.steps.base import StepType
from relayflow.engine.steps.flow import Branch, If
from relayflow.engine.steps.http_request import HttpRequest
from relayflow.engine.steps.messaging import ChatAppsMessage, Sms, VoiceMessage
from relayflow.engine.steps.waits import Wait, WaitForDtmf, WaitForReply

STEP_TYPES: dict[str, StepType] = {
    step.name: step
    for step in (
        Sms(),
        ChatAppsMessage(),
        HttpRequest(),
        Branch(),
        If(),
        Wait(),
        WaitForReply(),
        VoiceMessage(),
        WaitForDtmf(),
    )
}
