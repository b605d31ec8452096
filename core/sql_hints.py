"""`unindexed(column)`: a column SQLite must not choose an index for; PostgreSQL sees the column as it is.

SQLite keeps no statistics (the product never runs ANALYZE), so where a query has an equality on a column
with a broad index, its planner may walk that index instead of the selective one; writing the column as
`column + 0` hides the index from it. PostgreSQL plans from statistics, and an expression has none: it took
`contract.program_id + 0 = 1` to match 329 rows instead of 65,960 and joined every pending contract before
sorting them — the laggards page took 3.3 s on PostgreSQL at 100,000 institutions (issue #19), 1.3 ms with
the plain column. So the hint is rendered on SQLite only; a text column is hidden as `column || ''`. The same
went for the audit page's filters: with `program_id + 0` and `entity || ''` PostgreSQL scanned and sorted the
filtered rows (111 ms) instead of walking (actor, at, id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

HINTED = ("sqlite",)  # the dialects the hint is rendered on: a query that only chooses which column to hint can
# skip the choosing elsewhere


class unindexed(FunctionElement[Any]):  # lower case: used like a SQL function
    """The integer or text column as an expression SQLite cannot look up by index."""

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _plain(element: unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _hidden(element: unindexed, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    kind = getattr(element.type, "impl", element.type)  # a TypeDecorator's (SQLModel's AutoString) stored type
    return f"({column} || '')" if isinstance(kind, String) else f"({column} + 0)"
