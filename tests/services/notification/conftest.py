"""The backend's fixtures (database on SQLite and PostgreSQL, tokens) for the backend route test here."""

