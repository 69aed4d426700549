"""Passwords (argon2id, NIST-style policy) and email address normalisation."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from fabric_server.errors import RateLimited, Unprocessable, ValidationFailed

MAX_PASSWORD_LENGTH = 1024
# The address syntax the API documents (`EMAIL_PATTERN` in auth/schemas.py): a dot-atom
# local part and a domain of hostname labels under an alphabetic top-level label; spaces
# around it are dropped.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^ *{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}} *$"
EMAIL_MAX_LENGTH = 254
_EMAIL = re.compile(EMAIL_PATTERN)


def normalize_email(raw: str) -> str:
    """The canonical form of an address: documented syntax, lower case. 400 when invalid."""
    address = raw.strip()
    if len(address) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(address):
        message = "not an email address such as name@example.com"
        raise ValidationFailed(
            f"Invalid email address: {message}",
            details={"errors": [{"path": "email", "in": "body", "message": message}]},
        )
    return address.lower()


def lookup_email(raw: str) -> str:
    """The form used to look an account up: like `normalize_email`, but never raises (a
    malformed address simply matches no account)."""
    try:
        return normalize_email(raw)
    except ValidationFailed:
        return raw.strip().lower()


def _refuse(error: type[ValidationFailed], field: str, problems: list[str]) -> None:
    message = f"The {field.replace('_', ' ')} {' and '.join(problems)}."
    raise error(message, details={"errors": [{"path": field, "in": "body", "message": message}]})


class Passwords:
    """Hashes and checks passwords with argon2id off the event loop, and applies the policy.

    The default policy follows NIST SP 800-63B: a minimum length and no composition rules
    (`require_classes` turns upper/lower/digit/symbol rules on for those who must have them).

    At most `concurrency` hashes run at once (each takes the argon2 memory and a core); the
    others wait their turn in arrival order, and beyond `queue` waiting a new one is refused
    at once (429 `rate_limited`), so a flood of sign-ins cannot make a real one wait long.
    """

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        min_length: int,
        require_classes: bool = False,
        concurrency: int = 2,
        queue: int = 64,
    ) -> None:
        if memory_kib < 8 * parallelism:
            raise ValueError("argon2 needs at least 8 KiB of memory per lane of parallelism")
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self.min_length = min_length
        self.require_classes = require_classes
        self._dummy_hash: str | None = None
        self.concurrency = concurrency
        self.queue = queue
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0

    def check_policy(self, password: str, field: str = "password") -> None:
        """Lengths are in the documented schema (400); the optional character-class rule is
        not (422)."""
        problems: list[str] = []
        if len(password) < self.min_length:
            problems.append(f"must be at least {self.min_length} characters long")
        if len(password) > MAX_PASSWORD_LENGTH:
            problems.append(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
        if problems:
            _refuse(ValidationFailed, field, problems)
        if self.require_classes:
            classes = (
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            )
            if not all(classes):
                problems.append("must mix upper and lower case letters, digits and symbols")
                _refuse(Unprocessable, field, problems)

    async def hash(self, password: str) -> str:
        async with self._turn():
            return await asyncio.to_thread(self._hasher.hash, password)

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """A place among the hashes running at once, taken in arrival order; RateLimited
        when the line of those waiting is full."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        if self._slots.locked() and self._waiting >= self.queue:
            raise RateLimited(
                "Too many sign-ins are being checked right now; retry in a moment.",
                retry_after=1,
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`. Without a stored hash a dummy one is checked,
        so unknown accounts cost the same time as known ones."""
        against = stored if stored is not None else await self._dummy()
        try:
            async with self._turn():
                matched = await asyncio.to_thread(self._hasher.verify, against, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
