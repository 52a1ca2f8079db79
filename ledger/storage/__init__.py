"""Storage of entries, tiles and checkpoints (SQLAlchemy Core: SQLite, PostgreSQL)."""
