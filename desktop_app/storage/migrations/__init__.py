"""Alembic migrations of the store; run by ``storage.open_engine`` when a database is behind."""
