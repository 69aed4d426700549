"""The service container: everything the routes and workers share, built from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric_server.access.grants import GrantService
from fabric_server.access.keys import ApiKeyService
from fabric_server.access.principal import CredentialVerifier
from fabric_server.access.service import Access
from fabric_server.audit.recorder import add_audit_row
from fabric_server.auth.module import Auth, build_auth
from fabric_server.auth.platform import PlatformAdmins
from fabric_server.budgets.service import BudgetService
from fabric_server.db import versions
from fabric_server.db.database import Database
from fabric_server.db.writer import Writer
from fabric_server.engine.admission import InFlightLimit
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
from fabric_server.jobs import repository as jobs_repository
from fabric_server.jobs.handler import JobHandler
from fabric_server.jobs.service import JOB_WORK_KIND, JobService
from fabric_server.mail import Mailer, build_mailer
from fabric_server.observability.tracing import Tracing, tracing_from_env
from fabric_server.orgs import repository as org_repository
from fabric_server.orgs.invitations import InvitationService
from fabric_server.orgs.limits import LimitService, limit_of
from fabric_server.orgs.me import Identity
from fabric_server.orgs.members import MemberService
from fabric_server.orgs.personal import PersonalOrganizations
from fabric_server.orgs.service import OrgService
from fabric_server.providers.registry import ProviderRegistry
from fabric_server.providers.setup import build_registry
from fabric_server.schedules.wiring import Schedules, build_schedules
from fabric_server.secrets.crypto import MasterKey
from fabric_server.secrets.rotation import OrgSecretTable, SealedTable
from fabric_server.secrets.service import SecretStore
from fabric_server.settings import Settings
from fabric_server.webhooks.module import Webhooks, build_webhooks
from fabric_server.webhooks.rotation import WebhookSecretTable
from fabric_server.workers.service import WorkerService
from fabric_server.workers.wiring import build_workers
from fabric_server.workflows import repository as workflow_repository
from fabric_server.workflows.effects import (
    NODE_TIMEOUT_KIND,
    RUN_CANCEL_KIND,
    RUN_START_KIND,
    TASK_EXPIRE_KIND,
)
from fabric_server.workflows.wiring import Workflows, build_workflows

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
    access = Access(
        dev_mode=settings.is_dev, archived=org_repository.archived, versions=cache_versions
    )
    access.register_resource("team", org_repository.organization_of_team)
    access.register_resource("job", jobs_repository.organization_of)
    platform_admins = PlatformAdmins.from_settings(settings)
    # Loaded when the server starts; seals organization secrets and webhook signing secrets.
    master_key = MasterKey(settings)
    # Provider credentials: the organization's own secrets first, then server settings.
    secrets = SecretStore(master_key, access, events)
    providers = build_registry(settings, org_secrets=secrets)
    providers.use_cache(cache_versions)
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
    budgets = BudgetService(access, events, providers)
    budgets.use_cache(cache_versions)
    active_jobs = InFlightLimit(
        db,
        what="jobs",
        setting="FABRIC_ORG_MAX_ACTIVE_JOBS",
        limit=settings.org_max_active_jobs,
        count=jobs_repository.count_active,
        limit_of=limit_of("max_active_jobs"),
    )
    jobs = JobService(
        db,
        writer,
        cache_versions,
        access,
        queue,
        events,
        providers,
        budgets,
        hub,
        max_attempts=settings.job_max_attempts,
        active_jobs=active_jobs,
    )
    workflows = build_workflows(
        settings, db, queue, events, access, providers, budgets, writer, hub
    )
    schedules = build_schedules(settings, db, events, access, workflows, broadcaster)
    handlers: dict[str, Handler] = {
        JOB_WORK_KIND: JobHandler(db, writer, queue, events, providers, budgets, jobs)
    }
    mailer = build_mailer(settings)
    personal = PersonalOrganizations(dev_mode=settings.is_dev)
    auth = build_auth(settings, db, events, mailer, personal_organization=personal.create)
    auth.sessions.use_cache(cache_versions)
    handlers.update(workflows.handlers)
    workers, worker_handlers = build_workers(
        settings, db, writer, queue, events, access, secrets, workflows
    )
    handlers.update(worker_handlers)
    access.register_resource("workflow", workflow_repository.organization_of_definition)
    access.register_resource("workflow_run", workflow_repository.organization_of_run)
    orgs = OrgService(access, events)
    invitations = InvitationService(settings, access, events, mailer, orgs, auth.core.accounts)
    api_keys = ApiKeyService(db, access, events, writer=writer, versions=cache_versions)
    webhooks = build_webhooks(settings, db, queue, events, access, broadcaster, master_key)
    handlers[webhooks.work_kind] = webhooks.handler
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
        providers=providers,
        budgets=budgets,
        streamer=streamer,
        mailer=mailer,
        jobs=jobs,
        auth=auth,
        workflows=workflows,
        webhooks=webhooks,
        schedules=schedules,
        handlers=handlers,
        orgs=orgs,
        members=MemberService(access, events, orgs),
        invitations=invitations,
        identity=Identity(access, platform_admins),
        grants=GrantService(access, events),
        api_keys=api_keys,
        secrets=secrets,
        master_key=master_key,
        workers=workers,
        limits=LimitService(
            access,
            platform_admins,
            events,
            {"max_active_jobs": active_jobs, "max_active_runs": workflows.active_runs},
        ),
        tracing=tracing if tracing is not None else tracing_from_env(),
        # API keys first: they claim every `fab_…` token, the session verifier the rest.
        credential_verifiers=[api_keys.verify_credentials, auth.verify_credentials],
        sealed_tables=[OrgSecretTable(), WebhookSecretTable()],
    )
