"""Imports every module that defines tables, so `Base.metadata` is complete.

Alembic and the migrations test read the metadata from here; a domain that adds a
`models.py` adds one import line below.
"""

from fabric_server.auth import models as auth_models  # noqa: F401
from fabric_server.db import models
from fabric_server.db.models import Base
from fabric_server.webhooks import models as webhook_models  # noqa: F401

__all__ = ["Base", "models"]
