"""Imports every module that defines tables, so `Base.metadata` is complete.

Alembic and the migrations test read the metadata from here; a domain that adds a
`models.py` adds one import line below.
"""

from fabric_server.access import models as access_models
from fabric_server.audit import models as audit_models
from fabric_server.auth import models as auth_models
from fabric_server.budgets import models as budget_models  # noqa: F401
from fabric_server.db import models, versions
from fabric_server.db.models import Base
from fabric_server.galleries import models as gallery_models  # noqa: F401
from fabric_server.orgs import models as orgs_models
from fabric_server.schedules import models as schedule_models  # noqa: F401
from fabric_server.secrets import models as secrets_models
from fabric_server.webhooks import models as webhook_models  # noqa: F401
from fabric_server.workers import models as worker_models  # noqa: F401
from fabric_server.workflows import models as workflow_models

__all__ = [
    "Base",
    "access_models",
    "audit_models",
    "auth_models",
    "models",
    "orgs_models",
    "secrets_models",
    "versions",
    "workflow_models",
]
