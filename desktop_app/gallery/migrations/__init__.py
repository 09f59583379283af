"""Alembic migrations of the store; run by ``store.open_engine`` on every open."""
