"""Alembic environment: always run programmatically with a live connection."""

from alembic import context

from ledger.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
