"""Which account a social sign-in belongs to.

1. An identity already linked by (provider, provider_user_id) wins.
2. Else an account with the same email, but only when the provider vouches for the email.
   If that account had never proven its address, it may have been registered by someone
   waiting for the real owner: its password, sessions and API keys are taken away before
   linking (`AddressProof`; the owner can set a password through recovery).
3. Else a new account (with a personal organization, like sign-up).
"""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.auth import repository
from fabric_server.auth.claim import AddressProof
from fabric_server.auth.core import AuthCore, ClientInfo, IssuedTokens
from fabric_server.auth.mailed import MailedTokens
from fabric_server.auth.models import SocialIdentity, User
from fabric_server.auth.sessions import Sessions
from fabric_server.auth.social import SocialProfile
from fabric_server.db.unique import write_unique
from fabric_server.errors import Conflict, Unauthorized


class SocialLinker:
    def __init__(
        self, core: AuthCore, sessions: Sessions, mailed: MailedTokens, proof: AddressProof
    ) -> None:
        self.core = core
        self.sessions = sessions
        self.mailed = mailed
        self.proof = proof

    async def sign_in(
        self, session: AsyncSession, profile: SocialProfile, client: ClientInfo
    ) -> IssuedTokens:
        now = self.core.clock()
        method = f"social:{profile.provider}"
        link = await repository.identity(session, profile.provider, profile.provider_user_id)
        if link is not None:
            user = await repository.get_user(session, link.user_id)
            if user is None:  # pragma: no cover - identities are deleted with their user
                raise Unauthorized("The linked account no longer exists.")
            link.last_login_at = now
            link.email = profile.email or link.email
            link.avatar_url = profile.avatar_url or link.avatar_url
        else:
            user = await self._account_for(session, profile, method)
            identity = SocialIdentity(
                user_id=user.id,
                provider=profile.provider,
                provider_user_id=profile.provider_user_id,
                email=profile.email,
                avatar_url=profile.avatar_url,
                last_login_at=now,
            )
            await write_unique(
                session, partial(repository.add_identity, session, identity), _linked_concurrently
            )
            await self.core.events.record(
                session,
                "auth.social.linked",
                organization_id=None,
                payload={"user_id": user.id, "provider": profile.provider},
            )
        if user.display_name is None and profile.display_name:
            user.display_name = profile.display_name
        return await self.sessions.signed_in(session, user, method, client)

    async def _account_for(
        self, session: AsyncSession, profile: SocialProfile, method: str
    ) -> User:
        existing = await repository.user_by_email(session, profile.email) if profile.email else None
        if existing is not None:
            if not profile.email_verified:
                raise Conflict(
                    "An account with this email exists, and the provider did not verify the "
                    "address: sign in to that account another way."
                )
            await self.proof.proven(session, existing, method)
            return existing
        user = await self.core.accounts.create(
            session,
            email=profile.email,
            display_name=profile.display_name,
            password_hash=None,
            email_verified=profile.email_verified and profile.email is not None,
            method=method,
        )
        await self.mailed.send_verification(session, user)
        return user


def _linked_concurrently() -> Conflict:
    return Conflict("This sign-in is being linked concurrently; try again.")
