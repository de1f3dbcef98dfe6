"""Alembic environment of the backend database (see services.platform.database.run_migrations)."""

from services.backend.models import Base
from services.platform.database import run_migrations

run_migrations(Base.metadata, default_url="sqlite:///./todo.db")
