"""Accounts: sign up, log in and out, keep the session's tokens, recover a password.

A successful `login` (or `signup`, `verify_magic_link`, `refresh_token`) stores the access and
refresh tokens in the client: requests are then signed with the access token instead of the
API key, and the token is refreshed automatically (see `_auth`). `logout` drops them again.
"""

from __future__ import annotations

from typing import Any, Optional, cast

from ._auth import Credentials
from ._base import REFRESH_PATH, encode_path
from ._core import AsyncClientCore, SyncClientCore
from .types import AuthResponse


def _signup_body(email: str, password: str, display_name: Optional[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    return body


def _refresh_body(explicit: Optional[str], stored: Optional[str]) -> dict[str, Any]:
    refresh_token = explicit or stored
    if not refresh_token:
        raise ValueError("no refresh token: pass one, or log in first")
    return {"refresh_token": refresh_token}


def _logout_body(explicit: Optional[str], current: Optional[str]) -> dict[str, Any]:
    access_token = explicit or current
    return {} if access_token is None else {"access_token": access_token}


def _social_login_url(base_url: str, provider: str) -> str:
    return base_url + encode_path("/v1/auth/social/{}", provider)


class _AccountsShared:
    """What the two faces share without I/O."""

    _credentials: Credentials
    _learned_organization_id: Optional[str]

    @property
    def access_token(self) -> Optional[str]:
        """The access token of the session this client holds, or None when logged out."""
        session = self._credentials.store.session
        return None if session is None else session.access_token

    def _keep(self, auth: Any, now: float) -> AuthResponse:
        self._credentials.store.store(auth, now)
        # Another principal may act from now on: its organization is asked anew when needed.
        self._learned_organization_id = None
        return cast(AuthResponse, auth)

    def _clear_session(self) -> None:
        self._credentials.store.clear()
        self._learned_organization_id = None

    def _current_bearer(self) -> Optional[str]:
        store = self._credentials.store
        session = store.session
        return store.api_key if session is None else session.access_token

    def _stored_refresh_token(self) -> Optional[str]:
        session = self._credentials.store.session
        return None if session is None else session.refresh_token


class AccountsMethods(_AccountsShared, SyncClientCore):
    def signup(
        self, email: str, password: str, *, display_name: Optional[str] = None
    ) -> AuthResponse:
        """Create an account (with its personal organization) and log in as its user.

        Returns the ``AuthResponse``; its tokens are stored and sign the following calls.
        """
        body = _signup_body(email, password, display_name)
        auth = self._request("POST", "/v1/auth/signup", body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    def login(self, email: str, password: str) -> AuthResponse:
        """Log in with email and password; the returned tokens are stored and used from now on.

        Wrong credentials raise `FabricAuthError`; too many failures `FabricRateLimitError`.
        """
        body = {"email": email, "password": password}
        auth = self._request("POST", "/v1/auth/login", body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    def magic_link(self, email: str) -> None:
        """Email a one-time login link to ``email`` (silently nothing if it has no account)."""
        self._request("POST", "/v1/auth/magic-link", body={"email": email}, refresh_auth=False)

    def verify_magic_link(self, token: str) -> AuthResponse:
        """Exchange the token of a magic link for a session; its tokens are stored."""
        body = {"token": token}
        auth = self._request("POST", "/v1/auth/magic-link/verify", body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    def social_login_url(self, provider: str) -> str:
        """The URL that starts the OAuth login with ``provider`` (e.g. ``"google"``).

        Redirect the user's browser there; no request is made.
        """
        return _social_login_url(self.base_url, provider)

    def refresh_token(self, refresh_token: Optional[str] = None) -> AuthResponse:
        """Trade a refresh token (by default the stored one) for a new token pair, stored.

        A refresh token is single-use: the one presented stops working.
        """
        body = _refresh_body(refresh_token, self._stored_refresh_token())
        auth = self._request("POST", REFRESH_PATH, body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    def logout(self, access_token: Optional[str] = None) -> None:
        """Revoke ``access_token`` (by default the current one) and drop the stored tokens.

        The client signs with its API key again afterwards, if it has one. The tokens are
        dropped even when the call fails (e.g. `FabricAuthError` for an expired token).
        """
        body = _logout_body(access_token, self._current_bearer())
        try:
            self._request("POST", "/v1/auth/logout", body=body, refresh_auth=False)
        finally:
            self._clear_session()

    def logout_all(self) -> None:
        """Revoke every session of the current user and drop the stored tokens."""
        try:
            self._request("POST", "/v1/auth/logout-all")
        finally:
            self._clear_session()

    def change_password(self, current_password: str, new_password: str) -> None:
        """Change the current user's password; the server then revokes every session.

        On success the stored tokens are dropped: log in again with the new password.
        """
        body = {"current_password": current_password, "new_password": new_password}
        self._request("POST", "/v1/auth/change-password", body=body)
        self._clear_session()

    def forgot_password(self, email: str) -> None:
        """Email a password recovery link to ``email`` (silently nothing if it has no account)."""
        body = {"email": email}
        self._request("POST", "/v1/auth/forgot-password", body=body, refresh_auth=False)

    def reset_password(self, recovery_token: str, new_password: str) -> None:
        """Set a new password with the recovery token from the email of `forgot_password`."""
        body = {"access_token": recovery_token, "new_password": new_password}
        self._request("POST", "/v1/auth/reset-password", body=body, refresh_auth=False)

    def verify_email(self, token: str) -> Any:
        """Confirm an email address with the token sent to it; returns the server's answer."""
        return self._request("POST", "/v1/auth/verify", body={"token": token}, refresh_auth=False)

    def resend_verification(self, email: str) -> None:
        """Mail a new email-verification link to ``email`` (silently nothing if it has no
        account or is verified already)."""
        body = {"email": email}
        self._request("POST", "/v1/auth/resend-verification", body=body, refresh_auth=False)


class AsyncAccountsMethods(_AccountsShared, AsyncClientCore):
    async def signup(
        self, email: str, password: str, *, display_name: Optional[str] = None
    ) -> AuthResponse:
        """Create an account and log in as its user; the returned tokens are stored."""
        body = _signup_body(email, password, display_name)
        auth = await self._request("POST", "/v1/auth/signup", body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    async def login(self, email: str, password: str) -> AuthResponse:
        """Log in with email and password; the returned tokens are stored and used from now on."""
        body = {"email": email, "password": password}
        auth = await self._request("POST", "/v1/auth/login", body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    async def magic_link(self, email: str) -> None:
        """Email a one-time login link to ``email`` (silently nothing if it has no account)."""
        body = {"email": email}
        await self._request("POST", "/v1/auth/magic-link", body=body, refresh_auth=False)

    async def verify_magic_link(self, token: str) -> AuthResponse:
        """Exchange the token of a magic link for a session; its tokens are stored."""
        path, body = "/v1/auth/magic-link/verify", {"token": token}
        auth = await self._request("POST", path, body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    def social_login_url(self, provider: str) -> str:
        """The URL that starts the OAuth login with ``provider``; no request is made."""
        return _social_login_url(self.base_url, provider)

    async def refresh_token(self, refresh_token: Optional[str] = None) -> AuthResponse:
        """Trade a refresh token (by default the stored one) for a new token pair, stored."""
        body = _refresh_body(refresh_token, self._stored_refresh_token())
        auth = await self._request("POST", REFRESH_PATH, body=body, refresh_auth=False)
        return self._keep(auth, self._clock())

    async def logout(self, access_token: Optional[str] = None) -> None:
        """Revoke ``access_token`` (by default the current one) and drop the stored tokens,
        even when the call fails.
        """
        body = _logout_body(access_token, self._current_bearer())
        try:
            await self._request("POST", "/v1/auth/logout", body=body, refresh_auth=False)
        finally:
            self._clear_session()

    async def logout_all(self) -> None:
        """Revoke every session of the current user and drop the stored tokens."""
        try:
            await self._request("POST", "/v1/auth/logout-all")
        finally:
            self._clear_session()

    async def change_password(self, current_password: str, new_password: str) -> None:
        """Change the current user's password; on success the stored tokens are dropped."""
        body = {"current_password": current_password, "new_password": new_password}
        await self._request("POST", "/v1/auth/change-password", body=body)
        self._clear_session()

    async def forgot_password(self, email: str) -> None:
        """Email a password recovery link to ``email`` (silently nothing if it has no account)."""
        body = {"email": email}
        await self._request("POST", "/v1/auth/forgot-password", body=body, refresh_auth=False)

    async def reset_password(self, recovery_token: str, new_password: str) -> None:
        """Set a new password with the recovery token from the email of `forgot_password`."""
        body = {"access_token": recovery_token, "new_password": new_password}
        await self._request("POST", "/v1/auth/reset-password", body=body, refresh_auth=False)

    async def verify_email(self, token: str) -> Any:
        """Confirm an email address with the token sent to it; returns the server's answer."""
        body = {"token": token}
        return await self._request("POST", "/v1/auth/verify", body=body, refresh_auth=False)

    async def resend_verification(self, email: str) -> None:
        """Mail a new email-verification link to ``email`` (silently nothing if it has no
        account or is verified already)."""
        body = {"email": email}
        await self._request("POST", "/v1/auth/resend-verification", body=body, refresh_auth=False)
