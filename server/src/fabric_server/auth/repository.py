"""SQL for accounts: users' sign-in state, sessions, refresh tokens, mailed tokens, identities."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CursorResult, Delete, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth.models import (
    AuthSession,
    OneTimeToken,
    RefreshToken,
    SignInThrottle,
    SocialIdentity,
    User,
)

# --- users ---------------------------------------------------------------------------------


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def add_user(session: AsyncSession, user: User) -> User:
    """Insert a user (flushed: a taken email raises IntegrityError here)."""
    session.add(user)
    await session.flush()
    return user


async def count_failed_login(session: AsyncSession, user_id: str) -> int:
    """Add one failed sign-in to the user's counter and return the new count.

    The UPDATE holds the row lock until commit, so concurrent failures all count.
    """
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .execution_options(synchronize_session=False)
    )
    count = await session.scalar(select(User.failed_logins).where(User.id == user_id))
    return int(count or 0)


async def set_sign_in_state(session: AsyncSession, user_id: str, **values: Any) -> None:
    """Update sign-in columns (failed_logins, locked_until, last_login_at, password_hash…)."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )


# --- sessions and refresh tokens -----------------------------------------------------------


async def add_session(session: AsyncSession, row: AuthSession) -> AuthSession:
    session.add(row)
    await session.flush()
    return row


async def get_session(session: AsyncSession, session_id: str) -> AuthSession | None:
    return await session.get(AuthSession, session_id)


async def open_session(session: AsyncSession, session_id: str) -> tuple[str, dt.datetime] | None:
    """The user and expiry of a session that was not revoked."""
    row = (
        await session.execute(
            select(AuthSession.user_id, AuthSession.expires_at).where(
                AuthSession.id == session_id, AuthSession.revoked_at.is_(None)
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def revoke_session(
    session: AsyncSession, session_id: str, now: dt.datetime, reason: str
) -> bool:
    stmt = (
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


async def revoke_user_sessions(
    session: AsyncSession, user_id: str, now: dt.datetime, reason: str
) -> int:
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return int(result.rowcount)


async def extend_session(
    session: AsyncSession, session_id: str, now: dt.datetime, expires_at: dt.datetime
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id)
        .values(refreshed_at=now, expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )


async def add_refresh_token(
    session: AsyncSession, session_id: str, digest: str, expires_at: dt.datetime
) -> None:
    session.add(RefreshToken(session_id=session_id, token_hash=digest, expires_at=expires_at))
    await session.flush()


async def refresh_token_by_digest(session: AsyncSession, digest: str) -> RefreshToken | None:
    return await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest))


async def use_refresh_token(session: AsyncSession, token_id: str, now: dt.datetime) -> bool:
    """Mark a refresh token used; False when someone else used it first."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


# --- mailed one-time tokens ----------------------------------------------------------------


async def replace_one_time_token(
    session: AsyncSession, user_id: str, purpose: str, digest: str, expires_at: dt.datetime
) -> None:
    """Store a new token for (user, purpose); earlier ones for the same purpose stop working."""
    await session.execute(
        delete(OneTimeToken).where(OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose)
    )
    session.add(
        OneTimeToken(user_id=user_id, purpose=purpose, token_hash=digest, expires_at=expires_at)
    )
    await session.flush()


async def usable_one_time_token(
    session: AsyncSession, digest: str, purpose: str, now: dt.datetime
) -> OneTimeToken | None:
    return await session.scalar(
        select(OneTimeToken).where(
            OneTimeToken.token_hash == digest,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > now,
        )
    )


async def use_one_time_token(session: AsyncSession, token_id: str, now: dt.datetime) -> bool:
    """Mark a mailed token used; False when it was used concurrently."""
    stmt = (
        update(OneTimeToken)
        .where(OneTimeToken.id == token_id, OneTimeToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


# --- social identities ---------------------------------------------------------------------


async def identity(
    session: AsyncSession, provider: str, provider_user_id: str
) -> SocialIdentity | None:
    return await session.scalar(
        select(SocialIdentity).where(
            SocialIdentity.provider == provider,
            SocialIdentity.provider_user_id == provider_user_id,
        )
    )


async def add_identity(session: AsyncSession, row: SocialIdentity) -> SocialIdentity:
    session.add(row)
    await session.flush()
    return row


# --- retention -----------------------------------------------------------------------------
# Each deletes at most `limit` rows that stopped working before `older_than` (a cutoff in the
# past), so nothing still usable — a live session, an unused unexpired token — ever matches.


async def delete_ended_sessions(session: AsyncSession, older_than: dt.datetime, limit: int) -> int:
    """Sessions that expired or were revoked before `older_than`; their refresh tokens go by
    the foreign key's cascade."""
    ended = (
        select(AuthSession.id)
        .where(or_(AuthSession.expires_at < older_than, AuthSession.revoked_at < older_than))
        .limit(limit)
    )
    return await _deleted(session, delete(AuthSession).where(AuthSession.id.in_(ended)))


async def delete_expired_refresh_tokens(
    session: AsyncSession, older_than: dt.datetime, limit: int
) -> int:
    """Refresh tokens that expired before `older_than`, used or not. A used token is kept
    until then so that presenting it again still revokes its session (reuse detection)."""
    expired = select(RefreshToken.id).where(RefreshToken.expires_at < older_than).limit(limit)
    return await _deleted(session, delete(RefreshToken).where(RefreshToken.id.in_(expired)))


async def delete_spent_one_time_tokens(
    session: AsyncSession, older_than: dt.datetime, limit: int
) -> int:
    """Mailed tokens that expired or were used before `older_than`."""
    spent = (
        select(OneTimeToken.id)
        .where(or_(OneTimeToken.expires_at < older_than, OneTimeToken.used_at < older_than))
        .limit(limit)
    )
    return await _deleted(session, delete(OneTimeToken).where(OneTimeToken.id.in_(spent)))


async def _deleted(session: AsyncSession, stmt: Delete) -> int:
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        stmt.execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


# --- sign-in throttles ---------------------------------------------------------------------


async def throttle_for_update(
    session: AsyncSession, account_key: str, address: str, now: dt.datetime
) -> SignInThrottle:
    """The (account, address) pair's row, created when missing, locked until commit."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(SignInThrottle)
        .values(
            account_key=account_key,
            address=address,
            failures=0,
            window_started_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["account_key", "address"])
    )
    row = await session.get(
        SignInThrottle, (account_key, address), with_for_update=True, populate_existing=True
    )
    assert row is not None
    return row


async def throttle_locked_until(
    session: AsyncSession, pairs: list[tuple[str, str]]
) -> dt.datetime | None:
    """The latest lock end among these (account, address) rows."""
    pair = tuple_(SignInThrottle.account_key, SignInThrottle.address)
    found: dt.datetime | None = await session.scalar(
        select(func.max(SignInThrottle.locked_until)).where(pair.in_(pairs))
    )
    return found


async def clear_throttles(
    session: AsyncSession, account_key: str, address: str | None = None
) -> None:
    """Forget the failures of one (account, address) pair, or of every address."""
    stmt = delete(SignInThrottle).where(SignInThrottle.account_key == account_key)
    if address is not None:
        stmt = stmt.where(SignInThrottle.address == address)
    await session.execute(stmt.execution_options(synchronize_session=False))


async def delete_stale_throttles(session: AsyncSession, older_than: dt.datetime, limit: int) -> int:
    """Pairs whose last failure and lock both ended before `older_than`."""
    pair = tuple_(SignInThrottle.account_key, SignInThrottle.address)
    stale = (
        select(SignInThrottle.account_key, SignInThrottle.address)
        .where(
            SignInThrottle.updated_at < older_than,
            or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until < older_than),
        )
        .limit(limit)
    )
    return await _deleted(session, delete(SignInThrottle).where(pair.in_(stale)))
