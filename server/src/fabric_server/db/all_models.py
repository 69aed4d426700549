"""Imports every module that defines tables, so `Base.metadata` is complete.

Alembic and the migrations test read the metadata from here; a domain that adds a
`models.py` adds one import line below.
"""

from fabric_server.access import models as access_models
from fabric_server.audit import models as audit_models
from fabric_server.auth import models as auth_models
from fabric_server.budgets import models as budget_models
from fabric_server.db import versions
from fabric_server.db.base import Base
from fabric_server.engine import models as engine_models
from fabric_server.events import models as event_models
from fabric_server.galleries import models as gallery_models
from fabric_server.jobs import models as job_models
from fabric_server.mail import models as mail_models
from fabric_server.orgs import models as orgs_models
from fabric_server.schedules import models as schedule_models
from fabric_server.secrets import models as secrets_models
from fabric_server.usage import models as usage_models
from fabric_server.webhooks import models as webhook_models
from fabric_server.workers import models as worker_models
from fabric_server.workflows import models as workflow_models

__all__ = [
    "Base",
    "access_models",
    "audit_models",
    "auth_models",
    "budget_models",
    "engine_models",
    "event_models",
    "gallery_models",
    "job_models",
    "mail_models",
    "orgs_models",
    "schedule_models",
    "secrets_models",
    "usage_models",
    "versions",
    "webhook_models",
    "worker_models",
    "workflow_models",
]
