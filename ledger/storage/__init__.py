"""Storage of entries, tiles and checkpoints (SQLAlchemy Core; SQLite and PostgreSQL)."""
