"""Builds the jobs domain: submission and waiting, the job handler, the in-flight limit."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.engine.admission import InFlightLimit
from fabric_server.jobs import repository
from fabric_server.jobs.handler import JobHandler
from fabric_server.jobs.service import JOB_WORK_KIND, JobService
from fabric_server.orgs.limits import limit_of
from fabric_server.provider_calls.use_case import ProviderCalls


@dataclass(kw_only=True)
class Jobs(Assembled):
    service: JobService
    #: Unfinished jobs per organization (an organization's limits override it).
    active_jobs: InFlightLimit


def assemble(platform: Platform, calls: ProviderCalls) -> Jobs:
    settings, db = platform.settings, platform.db
    active_jobs = InFlightLimit(
        db,
        what="jobs",
        setting="FABRIC_ORG_MAX_ACTIVE_JOBS",
        limit=settings.org_max_active_jobs,
        count=repository.count_active,
        limit_of=limit_of("max_active_jobs"),
    )
    service = JobService(
        db,
        platform.writer,
        platform.versions,
        platform.access,
        platform.queue,
        platform.events,
        calls,
        platform.hub,
        max_attempts=settings.job_max_attempts,
        active_jobs=active_jobs,
    )
    handler = JobHandler(db, platform.writer, platform.queue, platform.events, calls, service)
    return Jobs(
        service=service,
        active_jobs=active_jobs,
        handlers={JOB_WORK_KIND: handler},
        resolvers={"job": repository.organization_of},
    )
