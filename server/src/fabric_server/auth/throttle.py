"""Failed sign-ins, counted per account *and* client address.

Enough failures for one email from one address lock that pair for a while: guessing from
there stops, while the owner signing in from anywhere else is not locked out (and a magic
link or a password reset lifts every lock of the account). The email's digest is the key
whether or not an account exists, so locks, answers and timing reveal nothing about which
accounts exist. The state lives in the database: every process shares it.

Two wider counts stop guessing spread out: failures of one email from any address
(`FABRIC_LOGIN_ACCOUNT_MAX_FAILURES`: many addresses trying one account) and from one address
for any email (`FABRIC_LOGIN_ADDRESS_MAX_FAILURES`: one address trying many accounts). They
are rows of the same table, with `*` for the side they do not name.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.passwords import lookup_email
from fabric_server.settings import Settings

UNKNOWN_ADDRESS = "unknown"
# Neither an email digest (64 hex digits) nor a client address.
ANY = "*"


def account_key(email: str) -> str:
    """The key of an email (valid or not, with an account or not): a digest, since people
    sometimes type a password into the email field."""
    return hashlib.sha256(lookup_email(email).encode("utf-8")).hexdigest()


def address_of(ip: str | None) -> str:
    return (ip or UNKNOWN_ADDRESS)[:64]


def _counted(settings: Settings, key: str, address: str) -> list[tuple[str, str, int]]:
    """The rows a failure of the pair counts in, each with its limit, in a fixed order (rows
    are locked in it, so concurrent sign-ins never wait on each other in a circle)."""
    return sorted(
        [
            (key, address, settings.login_max_failures),
            (key, ANY, settings.login_account_max_failures),
            (ANY, address, settings.login_address_max_failures),
        ]
    )


async def lock_remaining(
    session: AsyncSession, key: str, address: str, now: dt.datetime
) -> dt.timedelta | None:
    """How long the pair stays locked — by its own failures, the email's from anywhere or
    the address's for any email — or None when it is not locked."""
    pairs = [(key, address), (key, ANY), (ANY, address)]
    until = await repository.throttle_locked_until(session, pairs)
    return None if until is None or until <= now else until - now


async def count_failure(
    session: AsyncSession, settings: Settings, key: str, address: str, now: dt.datetime
) -> dt.timedelta | None:
    """Count one failed sign-in of the pair (and of its email and its address); the lock's
    length when this one locks any of them.

    Failures count within a window as long as the lock: older ones are forgotten.
    """
    window = dt.timedelta(seconds=settings.login_lock_seconds)
    locked = None
    for row_key, row_address, limit in _counted(settings, key, address):
        row = await repository.throttle_for_update(session, row_key, row_address, now)
        if row.window_started_at <= now - window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        row.updated_at = now
        if row.failures >= limit:
            row.failures, row.window_started_at = 0, now
            row.locked_until = now + window
            locked = window
    await session.flush()
    return locked


async def succeeded(session: AsyncSession, key: str, address: str) -> None:
    """A right password from this address: its failures are forgotten."""
    await repository.clear_throttles(session, key, address)


async def unlock_everywhere(session: AsyncSession, email: str | None) -> None:
    """The mailbox was proven (magic link, reset): every lock of the account is lifted."""
    if email is not None:
        await repository.clear_throttles(session, account_key(email))
