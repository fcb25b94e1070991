"""Storage: SQLAlchemy Core tables, queries per table family, Alembic migrations."""
