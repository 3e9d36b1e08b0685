"""Alembic environment: always handed a live connection by `models.db.upgrade`."""

from alembic import context

from models.entities import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `barrio db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
