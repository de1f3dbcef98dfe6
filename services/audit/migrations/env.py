"""Alembic environment of the audit database: the connection handed over by
services.audit.db.migrate, or DATABASE_URL for `alembic -c services/audit/alembic.ini ...`."""

from __future__ import annotations

import os
from contextlib import nullcontext

from alembic import context
from sqlalchemy import create_engine

from services.audit.db import sqlalchemy_url
from services.audit.models import Base

given = context.config.attributes.get("connection")
engine = None if given is not None else create_engine(
    sqlalchemy_url(os.environ.get("DATABASE_URL", "sqlite:///./audit.db")))
with nullcontext(given) if given is not None else engine.begin() as connection:  # type: ignore[union-attr]
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
