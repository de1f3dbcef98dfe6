"""Alembic environment of the audit database (see services.platform.database.run_migrations)."""

from services.audit.models import Base
from services.platform.database import run_migrations

run_migrations(Base.metadata, default_url="sqlite:///./audit.db")
