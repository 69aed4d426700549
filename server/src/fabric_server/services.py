"""The service container: everything the routes and workers share, built from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric_server.access.grants import GrantService
from fabric_server.access.keys import ApiKeyService
from fabric_server.access.principal import CredentialVerifier
from fabric_server.access.service import Access
from fabric_server.assembly import Platform
from fabric_server.audit.recorder import add_audit_row
from fabric_server.auth import wiring as auth_wiring
from fabric_server.auth.platform import PlatformAdmins
from fabric_server.auth.wiring import Auth
from fabric_server.budgets import wiring as budgets_wiring
from fabric_server.budgets.service import BudgetService
from fabric_server.db import versions
from fabric_server.db.database import Database
from fabric_server.db.writer import Writer
from fabric_server.engine.lanes import CONTROL, DELIVERY, build_lanes
from fabric_server.engine.queue import RetryPolicy, WorkQueue
from fabric_server.engine.traced import TracedHandler
from fabric_server.engine.worker import Handler, Worker
from fabric_server.events.broadcaster import MemoryBroadcaster
from fabric_server.events.hub import EventHub
from fabric_server.events.metrics import EventMetrics
from fabric_server.events.open_streams import OpenStreams
from fabric_server.events.outbox import EventRecorder
from fabric_server.events.sse import EventStreamer
from fabric_server.galleries import wiring as galleries_wiring
from fabric_server.galleries.service import GalleryService
from fabric_server.jobs import wiring as jobs_wiring
from fabric_server.jobs.service import JobService
from fabric_server.mail import Mailer, build_mailer
from fabric_server.observability.tracing import Tracing, tracing_from_env
from fabric_server.orgs import repository as org_repository
from fabric_server.orgs import wiring as orgs_wiring
from fabric_server.orgs.invitations import InvitationService
from fabric_server.orgs.limits import LimitService
from fabric_server.orgs.me import Identity
from fabric_server.orgs.members import MemberService
from fabric_server.orgs.personal import PersonalOrganizations
from fabric_server.orgs.service import OrgService
from fabric_server.provider_calls import wiring as provider_calls_wiring
from fabric_server.provider_calls.use_case import ProviderCalls
from fabric_server.providers import wiring as providers_wiring
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.schedules import wiring as schedules_wiring
from fabric_server.schedules.wiring import Schedules
from fabric_server.secrets import wiring as secrets_wiring
from fabric_server.secrets.crypto import MasterKey
from fabric_server.secrets.rotation import SealedTable
from fabric_server.secrets.service import SecretStore
from fabric_server.settings import Settings
from fabric_server.webhooks import wiring as webhooks_wiring
from fabric_server.webhooks.wiring import Webhooks
from fabric_server.workers import wiring as workers_wiring
from fabric_server.workers.service import WorkerService
from fabric_server.workflows import wiring as workflows_wiring
from fabric_server.workflows.effects import (
    NODE_TIMEOUT_KIND,
    RUN_CANCEL_KIND,
    RUN_START_KIND,
    TASK_EXPIRE_KIND,
)
from fabric_server.workflows.wiring import Workflows

# Short work that must never wait behind the rest: starting and cancelling runs, time-outs.
CONTROL_KINDS = (RUN_START_KIND, RUN_CANCEL_KIND, NODE_TIMEOUT_KIND, TASK_EXPIRE_KIND)
CONTROL_SLOTS = 4


@dataclass
class Services:
    settings: Settings
    db: Database
    writer: Writer
    versions: versions.Versions
    broadcaster: MemoryBroadcaster
    hub: EventHub
    events: EventRecorder
    queue: WorkQueue
    access: Access
    platform_admins: PlatformAdmins
    providers: ProviderRegistry
    budgets: BudgetService
    calls: ProviderCalls
    streamer: EventStreamer
    mailer: Mailer
    jobs: JobService
    auth: Auth
    workflows: Workflows
    webhooks: Webhooks
    schedules: Schedules
    handlers: dict[str, Handler]
    orgs: OrgService
    members: MemberService
    invitations: InvitationService
    identity: Identity
    grants: GrantService
    api_keys: ApiKeyService
    secrets: SecretStore
    master_key: MasterKey
    workers: WorkerService
    limits: LimitService
    galleries: GalleryService
    tracing: Tracing = field(default_factory=Tracing)
    credential_verifiers: list[CredentialVerifier] = field(default_factory=list)
    # Every table holding values sealed with the master key (re-sealed by key rotation).
    sealed_tables: list[SealedTable] = field(default_factory=list)

    def new_worker(self) -> Worker:
        s = self.settings
        lanes = build_lanes(
            compute_slots=s.worker_concurrency,
            delivery_slots=s.webhook_concurrency,
            control_slots=CONTROL_SLOTS,
        )
        lane_of = {kind: CONTROL for kind in CONTROL_KINDS}
        lane_of[self.webhooks.work_kind] = DELIVERY
        return Worker(
            self.queue,
            # Each item runs with its ids in the log context, in a span when tracing is on.
            {kind: TracedHandler(handler, self.tracing) for kind, handler in self.handlers.items()},
            lanes=lanes,
            lane_of=lane_of,
            poll_interval=s.worker_poll_interval,
            heartbeat_interval=s.heartbeat_seconds,
            shutdown_grace=s.shutdown_grace_seconds,
        )


def build_services(
    settings: Settings, db: Database | None = None, *, tracing: Tracing | None = None
) -> Services:
    """Everything the server runs on; tracing as the `OTEL_*` environment says, unless
    given."""
    tracing = tracing if tracing is not None else tracing_from_env()
    db = db or Database(settings.resolved_database_url)
    db.before_commit.append(add_audit_row)
    cache_versions = versions.Versions(db)
    cache_versions.install()
    writer = Writer(db)
    broadcaster = MemoryBroadcaster()
    events = EventRecorder(broadcaster.notify, max_payload_bytes=settings.event_payload_max_bytes)
    queue = WorkQueue(
        db,
        lease_seconds=settings.lease_seconds,
        retry=RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds),
        writer=writer,
    )
    # The platform every domain is assembled from. Access (with API keys and grants) is part
    # of it: it sits below the domains, which teach it their resources through `resolvers`.
    access = Access(
        dev_mode=settings.is_dev, archived=org_repository.archived, versions=cache_versions
    )
    api_keys = ApiKeyService(db, access, events, writer=writer, versions=cache_versions)
    platform_admins = PlatformAdmins.from_settings(settings)
    # Loaded when the server starts; seals organization secrets and webhook signing secrets.
    master_key = MasterKey(settings)
    hub = EventHub(db, poll_seconds=settings.sse_poll_seconds)
    events.on_commit(hub.publish)
    events.on_commit(EventMetrics().observe)
    streamer = EventStreamer(
        db,
        hub,
        keepalive_seconds=settings.sse_keepalive_seconds,
        max_connection_seconds=settings.sse_max_connection_seconds,
        streams=OpenStreams(
            per_principal=settings.sse_max_streams_per_principal,
            per_organization=settings.sse_max_streams_per_organization,
        ),
        recheck_seconds=settings.sse_recheck_seconds,
    )
    platform = Platform(
        settings=settings,
        db=db,
        writer=writer,
        versions=cache_versions,
        queue=queue,
        events=events,
        broadcaster=broadcaster,
        hub=hub,
        access=access,
    )
    secrets = secrets_wiring.assemble(platform, master_key)
    # Provider credentials: the organization's own secrets first, then server settings.
    providers = providers_wiring.assemble(platform, secrets.store)
    budgets = budgets_wiring.assemble(platform)
    calls = provider_calls_wiring.assemble(platform, providers.registry, budgets.service, tracing)
    jobs = jobs_wiring.assemble(platform, calls.calls)
    workflows = workflows_wiring.assemble(platform, calls.calls)
    schedules = schedules_wiring.assemble(platform, workflows)
    handlers: dict[str, Handler] = {}
    mailer = build_mailer(settings)
    personal = PersonalOrganizations(dev_mode=settings.is_dev)
    auth = auth_wiring.assemble(platform, mailer, personal.create)
    workers = workers_wiring.assemble(platform, secrets.store, workflows)
    orgs = orgs_wiring.assemble(
        platform,
        mailer,
        auth.core.accounts,
        platform_admins,
        {"max_active_jobs": jobs.active_jobs, "max_active_runs": workflows.active_runs},
    )
    webhooks = webhooks_wiring.assemble(platform, master_key)
    galleries = galleries_wiring.assemble(platform, platform_admins)
    domains = (secrets, providers, budgets, calls, jobs, workflows, schedules, auth, workers)
    for domain in (*domains, orgs, webhooks, galleries):
        handlers.update(domain.handlers)
        for resource_type, resolver in domain.resolvers.items():
            access.register_resource(resource_type, resolver)
    events.on_commit(webhooks.dispatcher.observe)
    cache_versions.on_bump(versions.WEBHOOKS, webhooks.dispatcher.webhooks_changed)
    cache_versions.on_bump(versions.ACCESS, streamer.access_changed)
    cache_versions.on_bump(versions.SESSIONS, streamer.access_changed)
    return Services(
        settings=settings,
        db=db,
        writer=writer,
        versions=cache_versions,
        broadcaster=broadcaster,
        hub=hub,
        events=events,
        queue=queue,
        access=access,
        platform_admins=platform_admins,
        providers=providers.registry,
        budgets=budgets.service,
        calls=calls.calls,
        streamer=streamer,
        mailer=mailer,
        jobs=jobs.service,
        auth=auth,
        workflows=workflows,
        webhooks=webhooks,
        schedules=schedules,
        handlers=handlers,
        orgs=orgs.service,
        members=orgs.members,
        invitations=orgs.invitations,
        identity=orgs.identity,
        grants=GrantService(access, events),
        api_keys=api_keys,
        secrets=secrets.store,
        master_key=master_key,
        workers=workers.service,
        limits=orgs.limits,
        galleries=galleries.service,
        tracing=tracing,
        # API keys first: they claim every `fab_…` token, the session verifier the rest.
        credential_verifiers=[api_keys.verify_credentials, auth.verify_credentials],
        sealed_tables=[*secrets.sealed_tables, *webhooks.sealed_tables],
    )
