"""Failed sign-ins, counted per account *and* client address.

Enough failures for one email from one address lock that pair for a while: guessing from
there stops, while the owner signing in from anywhere else is not locked out (and a magic
link or a password reset lifts every lock of the account). The email's digest is the key
whether or not an account exists, so locks, answers and timing reveal nothing about which
accounts exist. The state lives in the database: every process shares it.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.passwords import lookup_email
from fabric_server.settings import Settings

UNKNOWN_ADDRESS = "unknown"


def account_key(email: str) -> str:
    """The key of an email (valid or not, with an account or not): a digest, since people
    sometimes type a password into the email field."""
    return hashlib.sha256(lookup_email(email).encode("utf-8")).hexdigest()


def address_of(ip: str | None) -> str:
    return (ip or UNKNOWN_ADDRESS)[:64]


async def lock_remaining(
    session: AsyncSession, key: str, address: str, now: dt.datetime
) -> dt.timedelta | None:
    """How long the pair stays locked, or None when it is not locked."""
    until = await repository.throttle_locked_until(session, key, address)
    return None if until is None or until <= now else until - now


async def count_failure(
    session: AsyncSession, settings: Settings, key: str, address: str, now: dt.datetime
) -> dt.timedelta | None:
    """Count one failed sign-in of the pair; the lock's length when this one locks it.

    Failures count within a window as long as the lock: older ones are forgotten.
    """
    row = await repository.throttle_for_update(session, key, address, now)
    window = dt.timedelta(seconds=settings.login_lock_seconds)
    if row.window_started_at <= now - window:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    row.updated_at = now
    locked = None
    if row.failures >= settings.login_max_failures:
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
