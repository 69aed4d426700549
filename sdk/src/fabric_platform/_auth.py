"""Credentials: the token store of a client, and the httpx auth flows that sign its requests.

`TokenStore` holds the API key given to the client and the session tokens of a login. Every
request is signed by one of two `httpx.Auth` flows over that store: `SigningAuth` only sets the
``Authorization`` header, `RefreshingAuth` also keeps the session alive - it refreshes an access
token that is about to expire, and on a 401 refreshes once and replays the request once.

The decisions of `RefreshingAuth` are written once, as a generator (`_flow`) that yields the
requests to send and the moments to take or release the refresh lock; a sync and an async
driver only carry them out (a `threading.Lock` for the one, an `asyncio.Lock` for the other).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import math
import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import httpx

from ._base import api_error_from_response, unwrap_response

# Refresh this long before the access token expires, so a request is never sent with a token
# that dies on its way (at most half the token's lifetime, for very short-lived tokens).
EXPIRY_SKEW = 60.0
# Answers to a refresh that mean the refresh token itself is no good: the session is over.
_DEAD_SESSION_STATUSES = frozenset({400, 401, 403})


def jwt_expiry(token: str) -> Optional[float]:
    """The ``exp`` claim (seconds since the epoch) of a JWT, or None if it has none.

    The signature is not verified: the value only schedules a refresh, it grants nothing.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except ValueError:  # bad base64 (binascii.Error), bad UTF-8 or bad JSON are all ValueErrors
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)


def _lifetime(expires_in: Any) -> Optional[float]:
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
        return None
    if not math.isfinite(expires_in) or expires_in <= 0:
        return None
    return float(expires_in)


@dataclass(frozen=True)
class Session:
    """The tokens of one login. ``refresh_at`` is when to refresh ahead of expiry (or None)."""

    access_token: str
    refresh_token: Optional[str]
    refresh_at: Optional[float]


class TokenStore:
    """The credentials a client signs with: a session's access token, else its API key.

    A session is replaced as a whole, by one assignment, so that concurrent readers always see a
    consistent pair; `RefreshingAuth` compares sessions by identity to tell whether another
    caller refreshed in the meantime.
    """

    def __init__(self, api_key: Optional[str]) -> None:
        self.api_key = api_key
        self._session: Optional[Session] = None

    @property
    def session(self) -> Optional[Session]:
        return self._session

    def store(self, auth: Any, now: float) -> bool:
        """Keep the tokens of an ``AuthResponse``; False (nothing kept) if it has no access token.

        The expiry comes from ``expires_in`` (relative, so immune to clock differences with the
        server), else from the ``exp`` claim of the access token when it is a JWT.
        """
        if not isinstance(auth, Mapping):
            return False
        access_token = auth.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            return False
        refresh_token = auth.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            refresh_token = None
        lifetime = _lifetime(auth.get("expires_in"))
        if lifetime is None:
            exp = jwt_expiry(access_token)
            lifetime = None if exp is None else exp - now
        refresh_at = None
        if lifetime is not None:
            refresh_at = now + lifetime - min(EXPIRY_SKEW, max(lifetime, 0.0) / 2)
        self._session = Session(access_token, refresh_token, refresh_at)
        return True

    def clear(self) -> None:
        """Forget the session; requests are signed with the API key again (if there is one)."""
        self._session = None

    def needs_refresh(self, now: float) -> bool:
        """True when the session can be refreshed and its access token is about to expire."""
        session = self._session
        return (
            session is not None
            and session.refresh_token is not None
            and session.refresh_at is not None
            and now >= session.refresh_at
        )

    def sign(self, request: httpx.Request, session: Optional[Session]) -> None:
        """Set the ``Authorization`` header of ``request`` for ``session`` (None: the API key)."""
        token = session.access_token if session is not None else self.api_key
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        else:
            request.headers.pop("Authorization", None)


class SigningAuth(httpx.Auth):
    """Signs each request with the current credentials; never refreshes.

    Used by the auth endpoints themselves (login, refresh, ...), which must not recurse into a
    refresh.
    """

    def __init__(self, store: TokenStore) -> None:
        self._store = store

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._store.sign(request, self._store.session)
        yield request


class _Lock(enum.Enum):
    ACQUIRE = "acquire"
    RELEASE = "release"


_Step = Union[httpx.Request, _Lock]
_Flow = Generator[_Step, Optional[httpx.Response], None]


class RefreshingAuth(httpx.Auth):
    """Signs each request and keeps the session alive (single-flight refresh).

    Before sending, an access token about to expire is refreshed. A 401 answer, while a refresh
    token is held, leads to one refresh and one replay of the request; the replay's answer is
    final, whatever it is. Refreshes are serialised by a lock, and a caller that waited for the
    lock while another refreshed uses the new token instead of refreshing again. A refresh the
    server rejects ends the session (both tokens are dropped) and the original 401 is raised as
    `FabricAuthError`; a refresh that fails otherwise (5xx, ...) keeps the tokens.
    """

    def __init__(
        self,
        store: TokenStore,
        clock: Callable[[], float],
        build_refresh_request: Callable[[str], httpx.Request],
    ) -> None:
        self._store = store
        self._clock = clock
        self._build_refresh_request = build_refresh_request
        self._sync_lock = threading.Lock()
        # Made on first use, inside the event loop that will use it (on Python 3.9 a lock binds
        # to the loop current when it is created).
        self._async_lock: Optional[asyncio.Lock] = None

    def _flow(self, request: httpx.Request) -> _Flow:
        store = self._store
        refreshed = False
        if store.needs_refresh(self._clock()):
            yield _Lock.ACQUIRE
            if store.needs_refresh(self._clock()):  # still: nobody refreshed while we waited
                refreshed = yield from self._refresh()
            yield _Lock.RELEASE

        used = store.session
        store.sign(request, used)
        response = yield request
        assert response is not None
        if response.status_code != 401 or refreshed or used is None or used.refresh_token is None:
            return  # a token this call just obtained is not refreshed a second time

        yield _Lock.ACQUIRE
        if store.session is used:  # nobody refreshed while we waited: it is up to us
            refreshed = yield from self._refresh()
            if not refreshed:
                raise api_error_from_response(response)
        yield _Lock.RELEASE
        current = store.session
        if current is None:  # another caller's refresh was rejected: the session is over
            return
        store.sign(request, current)
        yield request

    def _refresh(self) -> Generator[_Step, Optional[httpx.Response], bool]:
        session = self._store.session
        if session is None or session.refresh_token is None:
            return False
        response = yield self._build_refresh_request(session.refresh_token)
        assert response is not None
        if response.is_success and self._store.store(unwrap_response(response), self._clock()):
            return True
        if response.is_success or response.status_code in _DEAD_SESSION_STATUSES:
            self._store.clear()
        return False

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._flow(request)
        locked = False
        try:
            step = next(flow)
            while True:
                if isinstance(step, httpx.Request):
                    response = yield step
                    if step is not request or response.status_code == 401:
                        response.read()  # the flow reads refresh answers and 401 errors
                    step = flow.send(response)
                    continue
                if step is _Lock.ACQUIRE:
                    self._sync_lock.acquire()
                    locked = True
                else:
                    self._sync_lock.release()
                    locked = False
                step = next(flow)
        except StopIteration:
            return
        finally:
            if locked:
                self._sync_lock.release()
            flow.close()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        lock = self._async_lock
        flow = self._flow(request)
        locked = False
        try:
            step = next(flow)
            while True:
                if isinstance(step, httpx.Request):
                    response = yield step
                    if step is not request or response.status_code == 401:
                        await response.aread()  # the flow reads refresh answers and 401 errors
                    step = flow.send(response)
                    continue
                if step is _Lock.ACQUIRE:
                    await lock.acquire()
                    locked = True
                else:
                    lock.release()
                    locked = False
                step = next(flow)
        except StopIteration:
            return
        finally:
            if locked:
                lock.release()
            flow.close()


class Credentials:
    """The token store of one client and the two auth flows that sign with it."""

    def __init__(
        self,
        api_key: Optional[str],
        clock: Callable[[], float],
        build_refresh_request: Callable[[str], httpx.Request],
    ) -> None:
        self.store = TokenStore(api_key)
        self.signing = SigningAuth(self.store)
        self.refreshing = RefreshingAuth(self.store, clock, build_refresh_request)
