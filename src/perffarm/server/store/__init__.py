"""The server's database: tables, engine, and the Alembic migrations shipped in the package."""
