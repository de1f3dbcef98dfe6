"""The backend's fixtures (database on SQLite and PostgreSQL, tokens) for the backend route test here."""

from tests.services.backend.conftest import auth, database_url  # noqa: F401
