"""Alembic environment: runs on the connection handed over by services.backend.db.migrate,
or on DATABASE_URL when invoked as `alembic -c services/backend/alembic.ini upgrade head`."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from services.backend.db import sqlalchemy_url
from services.backend.models import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(sqlalchemy_url(os.environ.get("DATABASE_URL", "sqlite:///./todo.db")))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
