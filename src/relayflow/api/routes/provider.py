"""`/api/v1/accounts/{accountId}/provider` (relayflow extension): how the account sends.

Admin keys only. Only a region can be chosen here; explicit API URLs (proxies, test servers)
are for operators (`relayflow accounts set-provider --base-url`), so an API key holder cannot
aim the service's requests at internal hosts.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_admin
from relayflow.api.context import context_of
from relayflow.api.params import body_schema, model_body
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES
from relayflow.errors import ApiError, ErrorCode
from relayflow.services.accounts import AccountError

router = APIRouter(
    prefix="/api/v1/accounts/{accountId}/provider", tags=["Provider (relayflow extension)"]
)


class ProviderInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["sandbox", "8x8"]
    apiKey: str | None = Field(
        default=None, max_length=500, description="8x8 API key (write-only)."
    )
    region: Literal["apac", "us", "uk", "id"] | None = Field(
        default=None, description="Default apac."
    )


def _webhook_urls(request: Request, account_id: str) -> dict[str, str]:
    base = context_of(request).settings.public_url or str(request.base_url).rstrip("/")
    return {
        kind: f"{base.rstrip('/')}/webhooks/{account_id}/{kind}"
        for kind in ("sms", "chatapps", "voice")
    }


@router.get(
    "",
    operation_id="get-provider",
    summary="The account's messaging provider",
    responses=ERROR_RESPONSES,
)
async def get_provider(request: Request, account_id: str = Depends(authorized_admin)) -> Response:
    view = await context_of(request).provider_settings.get(account_id)
    return FastJSONResponse({**view.as_json(), "webhookUrls": _webhook_urls(request, account_id)})


@router.put(
    "",
    operation_id="set-provider",
    summary="Switch between the sandbox and 8x8",
    responses=ERROR_RESPONSES,
    openapi_extra=body_schema(ProviderInput),
)
async def set_provider(request: Request, account_id: str = Depends(authorized_admin)) -> Response:
    body = await model_body(request, ProviderInput)
    service = context_of(request).provider_settings
    try:
        if body.provider == "sandbox":
            view = await service.use_sandbox(account_id)
        else:
            if not body.apiKey:
                raise ApiError(ErrorCode.INVALID_BODY, "'apiKey' is required for the 8x8 provider.")
            view = await service.use_8x8(account_id, body.apiKey, region=body.region)
    except AccountError as error:
        raise ApiError(ErrorCode.INVALID_BODY, str(error)) from None
    return FastJSONResponse({**view.as_json(), "webhookUrls": _webhook_urls(request, account_id)})
