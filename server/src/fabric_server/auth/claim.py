"""Proof of an address: who controls the mailbox owns the account.

Anyone can sign up with an address they do not own and wait for its owner (account
pre-hijacking). So when control of the mailbox is first proven — a mailed link followed, or
a provider vouching for the address — everything set up before that proof is taken away:
the password, every session and the API keys. The one exception is a proof made together
with a live session of the account itself: the person who set the password then also reads
the mailbox.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access import repository as keys
from fabric_server.auth.core import AuthCore
from fabric_server.auth.models import User
from fabric_server.auth.sessions import Sessions


class AddressProof:
    def __init__(self, core: AuthCore, sessions: Sessions) -> None:
        self.core = core
        self.sessions = sessions

    async def proven(
        self, session: AsyncSession, user: User, via: str, *, holder: str | None = None
    ) -> bool:
        """Mark the user's address verified. If it was not before and `holder` (the user of
        the live session the proof came with, if any) is not this user, the account is
        claimed: password removed, sessions revoked, API keys disabled. True when claimed."""
        if user.email_verified:
            return False
        user.email_verified = True
        if holder == user.id:
            return False
        user.password_hash = None
        revoked = await self.sessions.revoke_all(session, user.id, "email_claimed")
        disabled = await keys.live_keys_by(session, user.id)
        for key in disabled:
            key.disabled = True
        for key in disabled:
            await self.core.events.record(
                session,
                "api_key.disabled",
                organization_id=key.organization_id,
                payload={
                    "api_key_id": key.id,
                    "name": key.name,
                    "by": user.id,
                    "reason": "email_claimed",
                },
            )
        await self.core.events.record(
            session,
            "auth.email.claimed",
            organization_id=None,
            payload={
                "user_id": user.id,
                "via": via,
                "sessions_revoked": revoked,
                "api_keys_disabled": len(disabled),
            },
        )
        return True
