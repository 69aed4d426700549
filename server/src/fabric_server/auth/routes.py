"""HTTP routes for sign-up, sign-in and sessions (`/v1/auth/...`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from fabric_server.api.deps import PrincipalDep, ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.auth import recovery_routes, social_routes
from fabric_server.auth.deps import auth_out, bearer_token, client_info, rate_limit
from fabric_server.auth.schemas import (
    AuthResponse,
    ChangePasswordRequest,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RevokedOut,
    SignupRequest,
)
from fabric_server.errors import DomainError

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=ERROR_RESPONSES)


@router.post(
    "/signup",
    status_code=201,
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("signup"))],
    summary="Create an account (and its personal organization); mails a verification link",
)
@audited("auth.signup")
async def signup(body: SignupRequest, request: Request, services: ServicesDep) -> JSONResponse:
    async with services.db.write() as session:
        issued = await services.auth.service.signup(
            session, body.email, body.password, body.display_name, client_info(request)
        )
        data = auth_out(issued)
    return ok(request, data, 201)


@router.post(
    "/login",
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("login"))],
    summary="Sign in with email and password (5 failures lock the account for 15 minutes)",
)
@audited("auth.login")
async def login(body: LoginRequest, request: Request, services: ServicesDep) -> JSONResponse:
    async with services.db.write() as session:
        result = await services.auth.service.login(
            session, body.email, body.password, client_info(request)
        )
        data = None if isinstance(result, DomainError) else auth_out(result)
    if isinstance(result, DomainError):
        raise result  # after the commit: the failure is counted
    return ok(request, data)


@router.post(
    "/token/refresh",
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("refresh"))],
    summary="Trade a refresh token for a new pair (single use; reuse signs the session out)",
)
@audited("auth.refresh")
async def refresh(body: RefreshRequest, request: Request, services: ServicesDep) -> JSONResponse:
    async with services.db.write() as session:
        result = await services.auth.sessions.refresh(
            session, body.refresh_token, client_info(request)
        )
        data = None if isinstance(result, DomainError) else auth_out(result)
    if isinstance(result, DomainError):
        raise result  # after the commit: a reused token's session stays revoked
    return ok(request, data)


@router.post(
    "/logout",
    response_model=Envelope[RevokedOut],
    summary="Sign out the session of an access token (the body's, else the bearer token)",
)
@audited("auth.logout")
async def logout(body: LogoutRequest, request: Request, services: ServicesDep) -> JSONResponse:
    token = body.access_token or bearer_token(request)
    async with services.db.write() as session:
        revoked = await services.auth.sessions.logout(session, token)
    return ok(request, RevokedOut(revoked=revoked))


@router.post(
    "/logout-all",
    response_model=Envelope[RevokedOut],
    summary="Sign out every session of the calling user",
)
@audited("auth.logout_all")
async def logout_all(
    request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        revoked = await services.auth.sessions.logout_all(session, principal)
    return ok(request, RevokedOut(revoked=revoked))


@router.post(
    "/change-password",
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("change-password"))],
    summary="Change the password: every session is signed out, a new one is returned",
)
@audited("auth.change_password")
async def change_password(
    body: ChangePasswordRequest, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    async with services.db.write() as session:
        result = await services.auth.service.change_password(
            session, principal, body.current_password, body.new_password, client_info(request)
        )
        data = None if isinstance(result, DomainError) else auth_out(result)
    if isinstance(result, DomainError):
        raise result
    return ok(request, data)


router.include_router(recovery_routes.router)
router.include_router(social_routes.router)
