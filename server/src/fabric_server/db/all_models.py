"""Imports every module that defines tables, so `Base.metadata` is complete.

Alembic and the migrations test read the metadata from here; a domain that adds a
`models.py` adds one import line below.
"""

from fabric_server.audit import models as audit_models  # noqa: F401
from fabric_server.auth import models as auth_models  # noqa: F401
from fabric_server.db import models
from fabric_server.db.models import Base
from fabric_server.schedules import models as schedule_models  # noqa: F401
from fabric_server.workflows import models as workflow_models

__all__ = ["Base", "models", "workflow_models"]
