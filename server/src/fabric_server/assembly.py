"""What every domain is assembled from, and the shape of what it hands back.

Each domain package has one `wiring.py` with one function, `assemble(platform, ...)`, that
builds the domain's services from the shared `Platform` and returns the domain's object: the
services its routes use, plus the background work handlers it runs (`handlers`, by work kind)
and the access resolvers it adds (`resolvers`, by resource type). `services.py` only calls the
`assemble` functions in order and registers what they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric_server.access.service import Access, ResourceResolver
from fabric_server.db.database import Database
from fabric_server.db.versions import Versions
from fabric_server.db.writer import Writer
from fabric_server.engine.queue import WorkQueue
from fabric_server.engine.worker import Handler
from fabric_server.events.broadcaster import MemoryBroadcaster
from fabric_server.events.hub import EventHub
from fabric_server.events.outbox import EventRecorder
from fabric_server.settings import Settings


@dataclass(frozen=True)
class Platform:
    """The shared parts: settings, the database and its group-commit writer, the cache
    versions, the durable queue, the event recorder, broadcaster and hub, and access."""

    settings: Settings
    db: Database
    writer: Writer
    versions: Versions
    queue: WorkQueue
    events: EventRecorder
    broadcaster: MemoryBroadcaster
    hub: EventHub
    access: Access


@dataclass(kw_only=True)
class Assembled:
    """The part of every domain object `services.py` registers."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    resolvers: dict[str, ResourceResolver] = field(default_factory=dict)
