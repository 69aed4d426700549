"""HTTP routes for mailed links: magic links, password recovery, email verification.

Mailing endpoints answer 202 with the same body whether or not the account exists — and in
the same time: the answer leaves before anything depends on the account (finding it, making
a token, mailing), which runs right after it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from fabric_server.api.deps import ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.auth.deps import (
    auth_out,
    bearer_token,
    client_info,
    limit_key,
    rate_limit,
    user_out,
)
from fabric_server.auth.passwords import lookup_email
from fabric_server.auth.schemas import (
    AuthResponse,
    AuthUser,
    EmailRequest,
    MessageOut,
    ResetPasswordRequest,
    ResetTokenStatus,
    TokenRequest,
)

router = APIRouter(responses=ERROR_RESPONSES)
log = logging.getLogger("fabric_server.auth")

TokenQuery = Annotated[str, Query(min_length=1, max_length=4096, description="The mailed token")]
SENT = "If an account exists for this address, we sent it an email."


def _sent_then(
    request: Request, services: ServicesDep, work: Callable[[AsyncSession], Awaitable[None]]
) -> JSONResponse:
    """The 202 answer, with `work` done in a write transaction once it has been sent."""

    async def after_the_answer() -> None:
        try:
            async with services.db.write() as session:
                await work(session)
        except Exception:  # the answer is gone: the failure can only be logged
            log.exception("mailing a link failed")

    response = ok(request, MessageOut(message=SENT), 202)
    response.background = BackgroundTask(after_the_answer)
    return response


def _limit_address(request: Request, email: str) -> None:
    # Also per recipient, so one address cannot be flooded from many client addresses.
    # It applies to unknown addresses alike, so it reveals nothing about accounts.
    limit_key(request, ("mail-to", lookup_email(email)))


@router.post(
    "/magic-link",
    status_code=202,
    response_model=Envelope[MessageOut],
    dependencies=[Depends(rate_limit("mail"))],
    summary="Mail a single-use sign-in link (15 minutes); same answer for unknown emails",
)
@audited("auth.magic_link")
async def magic_link(body: EmailRequest, request: Request, services: ServicesDep) -> JSONResponse:
    _limit_address(request, body.email)
    recovery = services.auth.recovery
    return _sent_then(request, services, lambda s: recovery.request_magic_link(s, body.email))


@router.post(
    "/magic-link/verify",
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("token"))],
    summary="Sign in with a magic-link token",
)
@audited("auth.magic_link_verify")
async def magic_link_verify(
    body: TokenRequest, request: Request, services: ServicesDep
) -> JSONResponse:
    return await _finish_magic_link(body.token, request, services)


@router.get(
    "/magic-link/verify",
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("token"))],
    summary="Sign in by following the mailed magic link",
)
async def magic_link_follow(
    token: TokenQuery, request: Request, services: ServicesDep
) -> JSONResponse:
    return await _finish_magic_link(token, request, services)


async def _finish_magic_link(token: str, request: Request, services: ServicesDep) -> JSONResponse:
    async with services.db.write() as session:
        holder = await services.auth.sessions.holder_of(session, bearer_token(request))
        issued = await services.auth.recovery.finish_magic_link(
            session, token, client_info(request), holder
        )
        data = auth_out(issued)
    return ok(request, data)


@router.post(
    "/forgot-password",
    status_code=202,
    response_model=Envelope[MessageOut],
    dependencies=[Depends(rate_limit("mail"))],
    summary="Mail a single-use password-reset link; same answer for unknown emails",
)
@audited("auth.forgot_password")
async def forgot_password(
    body: EmailRequest, request: Request, services: ServicesDep
) -> JSONResponse:
    _limit_address(request, body.email)
    recovery = services.auth.recovery
    return _sent_then(request, services, lambda s: recovery.forgot_password(s, body.email))


@router.get(
    "/reset-password",
    response_model=Envelope[ResetTokenStatus],
    dependencies=[Depends(rate_limit("token"))],
    summary="Check a mailed reset token without using it (where the mailed link lands)",
)
async def reset_password_check(
    token: TokenQuery, request: Request, services: ServicesDep
) -> JSONResponse:
    async with services.db.read() as session:
        expires_at = await services.auth.recovery.check_reset_token(session, token)
    status = ResetTokenStatus(
        expires_at=expires_at,
        next='POST /v1/auth/reset-password with {"token", "new_password"}',
    )
    return ok(request, status)


@router.post(
    "/reset-password",
    response_model=Envelope[MessageOut],
    dependencies=[Depends(rate_limit("token"))],
    summary="Set a new password with the mailed token (`token` or `access_token`)",
)
@audited("auth.reset_password")
async def reset_password(
    body: ResetPasswordRequest, request: Request, services: ServicesDep
) -> JSONResponse:
    async with services.db.write() as session:
        holder = await services.auth.sessions.holder_of(session, bearer_token(request))
        await services.auth.recovery.reset_password(
            session, body.recovery_token, body.new_password, client_info(request), holder
        )
    return ok(
        request, MessageOut(message="Your password was changed and every session signed out.")
    )


@router.post(
    "/verify",
    response_model=Envelope[AuthUser],
    dependencies=[Depends(rate_limit("token"))],
    summary="Confirm an email address with the mailed token",
)
@audited("auth.verify_email")
async def verify_email(body: TokenRequest, request: Request, services: ServicesDep) -> JSONResponse:
    return await _verify(body.token, request, services)


@router.get(
    "/verify",
    response_model=Envelope[AuthUser],
    dependencies=[Depends(rate_limit("token"))],
    summary="Confirm an email address by following the mailed link",
)
async def verify_email_follow(
    token: TokenQuery, request: Request, services: ServicesDep
) -> JSONResponse:
    return await _verify(token, request, services)


async def _verify(token: str, request: Request, services: ServicesDep) -> JSONResponse:
    async with services.db.write() as session:
        holder = await services.auth.sessions.holder_of(session, bearer_token(request))
        user = await services.auth.recovery.verify_email(session, token, holder)
        data = user_out(user)
    return ok(request, data)


@router.post(
    "/resend-verification",
    status_code=202,
    response_model=Envelope[MessageOut],
    dependencies=[Depends(rate_limit("mail"))],
    summary="Mail a new verification link; same answer for unknown or verified emails",
)
@audited("auth.resend_verification")
async def resend_verification(
    body: EmailRequest, request: Request, services: ServicesDep
) -> JSONResponse:
    _limit_address(request, body.email)
    recovery = services.auth.recovery
    return _sent_then(request, services, lambda s: recovery.resend_verification(s, body.email))
