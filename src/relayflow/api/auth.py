"""Per-account bearer-key authentication: a key opens only its own account's paths."""

from __future__ import annotations

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from relayflow.api.context import context_of
from relayflow.errors import ApiError, ErrorCode
from relayflow.services.accounts import KeyOwner

bearer = HTTPBearer(auto_error=False, description="The account's API key: `Bearer rf_...`.")


async def _key_owner(
    request: Request,
    accountId: str,
    credentials: HTTPAuthorizationCredentials | None,
) -> KeyOwner:
    if credentials is None or not credentials.credentials:
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "Missing API key: send 'Authorization: Bearer <key>'."
        )
    owner = await context_of(request).accounts.identify(credentials.credentials)
    if owner is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "Invalid or revoked API key.")
    if owner.account_id != accountId:
        raise ApiError(ErrorCode.FORBIDDEN, f"This API key has no access to account '{accountId}'.")
    return owner


async def authorized_account(
    request: Request,
    accountId: str = Path(description="8x8 account id.", max_length=100),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> str:
    """The path's account id, once the bearer key is proven to belong to it."""
    return (await _key_owner(request, accountId, credentials)).account_id


async def authorized_admin(
    request: Request,
    accountId: str = Path(description="8x8 account id.", max_length=100),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> str:
    """Like `authorized_account`, for operations reserved to the account's admin keys."""
    owner = await _key_owner(request, accountId, credentials)
    if not owner.is_admin:
        raise ApiError(ErrorCode.FORBIDDEN, "This operation needs an admin API key of the account.")
    return owner.account_id
