"""Persistence: engine and connections, tables, repositories and Alembic migrations.

Repositories return frozen domain values (see `domain.values`), never rows.
"""
