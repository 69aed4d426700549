"""HTTP routes for social sign-in: the redirect flow and the trusted consumer-driven call."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from fabric_server.api.deps import ServicesDep
from fabric_server.api.envelope import ERROR_RESPONSES, Envelope, ok
from fabric_server.audit.actions import audited
from fabric_server.auth.deps import auth_out, bearer_token, client_info, rate_limit
from fabric_server.auth.passwords import normalize_email
from fabric_server.auth.schemas import AuthResponse, SocialLoginRequest
from fabric_server.auth.social import CALLBACK_PATH, STATE_COOKIE, STATE_TTL_SECONDS, SocialProfile
from fabric_server.errors import DomainError, Forbidden

router = APIRouter(responses=ERROR_RESPONSES)

# Short enough that four of them, percent-encoded, fit in a request line.
OptionalQuery = Annotated[str | None, Query(max_length=512)]


@router.get(
    "/social/{provider}",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "To the provider's sign-in page (sets the state cookie)"}},
    dependencies=[Depends(rate_limit("social"))],
    summary="Start social sign-in: redirect to the provider (OAuth2 code flow with PKCE)",
)
async def social_start(
    provider: Annotated[str, Path(min_length=1, max_length=64)],
    request: Request,
    services: ServicesDep,
    canonical: Annotated[
        bool, Query(description="Set by the server after moving to FABRIC_PUBLIC_URL")
    ] = False,
) -> RedirectResponse:
    flow = services.auth.oauth
    flow.provider(provider)  # 404 for an unconfigured provider, before anything else
    public_url = services.settings.resolved_public_url
    if not canonical and _origin(str(request.base_url)) != _origin(public_url):
        # The state cookie must live on the host the provider sends the browser back to.
        target = f"{public_url}/v1/auth/social/{quote(provider, safe='')}?canonical=true"
        return RedirectResponse(target, status_code=302)
    auth = services.auth.core
    url, cookie = flow.begin(provider, auth.signer, auth.clock())
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=STATE_TTL_SECONDS,
        path=CALLBACK_PATH,
        secure=public_url.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/callback",
    response_model=Envelope[AuthResponse],
    responses={
        302: {
            "description": "When FABRIC_SOCIAL_REDIRECT_URL is set: to that URL with the "
            "tokens (or `error`, `error_description`) in the fragment"
        }
    },
    dependencies=[Depends(rate_limit("social"))],
    summary="Finish social sign-in (the provider redirects here)",
)
async def social_callback(
    request: Request,
    services: ServicesDep,
    code: OptionalQuery = None,
    state: OptionalQuery = None,
    error: OptionalQuery = None,
    error_description: OptionalQuery = None,
) -> Response:
    auth = services.auth.core
    redirect_to = services.settings.social_redirect_url
    try:
        profile = await services.auth.oauth.finish(
            code=code,
            state=state,
            error=error,
            cookie=request.cookies.get(STATE_COOKIE),
            signer=auth.signer,
            now=auth.clock(),
        )
        async with services.db.write() as session:
            issued = await services.auth.linker.sign_in(session, profile, client_info(request))
            data = auth_out(issued)
    except DomainError as exc:
        if not redirect_to:
            raise
        fragment = {"error": exc.code, "error_description": exc.message}
        return RedirectResponse(f"{redirect_to}#{urlencode(fragment)}", status_code=302)
    response: Response
    if redirect_to:
        tokens: dict[str, str | int | None] = {
            "access_token": data.access_token,
            "refresh_token": data.refresh_token,
            "token_type": "bearer",
            "expires_in": data.expires_in,
            "user_id": data.user.id,
        }
        response = RedirectResponse(f"{redirect_to}#{urlencode(tokens)}", status_code=302)
    else:
        response = ok(request, data)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH)
    return response


@router.post(
    "/social-login",
    response_model=Envelope[AuthResponse],
    dependencies=[Depends(rate_limit("social"))],
    summary="Sign in with a profile a trusted application verified (needs the trusted key)",
)
@audited("auth.social_login")
async def social_login(
    body: SocialLoginRequest,
    request: Request,
    services: ServicesDep,
    x_fabric_trusted_key: Annotated[
        str | None,
        Header(
            max_length=512,
            description="FABRIC_SOCIAL_LOGIN_TRUSTED_KEY (or send it as the bearer token)",
        ),
    ] = None,
) -> JSONResponse:
    _require_trusted(services.settings.social_login_trusted_key, x_fabric_trusted_key, request)
    profile = SocialProfile(
        provider=body.provider.lower(),
        provider_user_id=body.provider_user_id,
        email=normalize_email(body.email) if body.email else None,
        email_verified=body.email_verified,
        display_name=body.display_name,
        avatar_url=body.avatar_url,
    )
    async with services.db.write() as session:
        issued = await services.auth.linker.sign_in(session, profile, client_info(request))
        data = auth_out(issued)
    return ok(request, data)


def _require_trusted(expected: str | None, header: str | None, request: Request) -> None:
    if not expected:
        raise Forbidden("Consumer-driven social login is not enabled on this server.")
    presented = header or bearer_token(request) or ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Forbidden("Social login needs the trusted key of this server.")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port
