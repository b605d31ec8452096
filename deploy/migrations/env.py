"""Alembic environment: the schema is `models.tables.metadata`; the URL comes from the caller."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from sqlalchemy.types import TypeDecorator

from core.db import make_engine
from models.tables import metadata

config = context.config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations store plain SQL types: our TypeDecorators only change how Python sees values."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl_instance
        if isinstance(impl, sa.DateTime):
            return f"sa.DateTime(timezone={impl.timezone})"
        if isinstance(impl, sa.String):
            return f"sa.String(length={impl.length})"
    return False


OPTIONS: dict[str, Any] = {"target_metadata": metadata, "render_as_batch": True, "render_item": render_item}


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
