"""Per-account bearer-key authentication: a key opens only its own account's paths."""

from __future__ import annotations

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from relayflow.api.context import context_of
from relayflow.errors import ApiError, ErrorCode

bearer = HTTPBearer(auto_error=False, description="The account's API key: `Bearer rf_...`.")


async def authorized_account(
    request: Request,
    accountId: str = Path(description="8x8 account id.", max_length=100),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> str:
    """The path's account id, once the bearer key is proven to belong to it."""
    if credentials is None or not credentials.credentials:
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "Missing API key: send 'Authorization: Bearer <key>'."
        )
    owner = await context_of(request).accounts.authenticate(credentials.credentials)
    if owner is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "Invalid or revoked API key.")
    if owner != accountId:
        raise ApiError(ErrorCode.FORBIDDEN, f"This API key has no access to account '{accountId}'.")
    return owner
