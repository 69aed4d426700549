"""The two guarded inserts every domain uses (`db/unique.py`), on a real unique constraint:
a taken key is a clear 409 that undoes only the insert, and a create that lost a race reads
back the winner's row."""

from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import select

from fabric_server.db.unique import create_or_find, write_unique
from fabric_server.errors import Conflict
from fabric_server.orgs import repository
from fabric_server.orgs.models import Organization
from fabric_server.services import Services


def _taken() -> Conflict:
    return Conflict("The organization slug is taken.")


async def test_a_taken_key_is_a_conflict_and_the_transaction_goes_on(services: Services) -> None:
    async with services.db.write() as session:
        await repository.add_organization(session, "acme", "Acme")
    async with services.db.write() as session:
        with pytest.raises(Conflict, match="slug is taken"):
            await write_unique(
                session, partial(repository.add_organization, session, "acme", "Other"), _taken
            )
        # Only the insert was undone: the same transaction still writes.
        await write_unique(
            session, partial(repository.add_organization, session, "acme-2", "Acme 2"), _taken
        )
    async with services.db.read() as session:
        names = (await session.scalars(select(Organization.name).order_by(Organization.slug))).all()
    assert [n for n in names if n.startswith(("Acme", "Other"))] == ["Acme", "Acme 2"]


async def test_a_create_that_lost_the_race_answers_the_existing_row(services: Services) -> None:
    async with services.db.write() as session:
        first = await repository.add_organization(session, "globex", "Globex")

    async def find() -> Organization | None:
        return (
            await session.scalars(select(Organization).where(Organization.slug == "globex"))
        ).one_or_none()

    async with services.db.write() as session:
        # The caller saw no row and inserts; the unique key says another request won.
        row, created = await create_or_find(
            session, partial(repository.add_organization, session, "globex", "Late"), find
        )
        assert (row.id, created) == (first.id, False)
        fresh, created = await create_or_find(
            session, partial(repository.add_organization, session, "initech", "Initech"), find
        )
        assert (fresh.slug, created) == ("initech", True)
