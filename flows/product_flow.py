"""How every product flow is declared: Prefect's `Flow`, its results kept nowhere, its parameters recorded as they are.

Prefect records a flow run's parameters (`Flow.serialize_parameters`, at the creation of every run) through
FastAPI's `jsonable_encoder`, and imports FastAPI, Starlette and their pydantic models for it at the first flow
run of a process: 0.10 s of CPU here (issue #17's figure 1 paid it in its first stage, and every flow process a
worker starts pays it before the flow's first line). The product's flows take only a program slug, switches and
seconds — str, int, bool — which are JSON already and which that encoder returns unchanged; so they are recorded
as they are. A value of any other type (none today) still goes through Prefect's encoder, as before.

Results: every flow names its storage and persists nothing (flows/results.py says why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Flow

from flows.results import PERSIST_RESULT, RESULT_STORAGE

P = ParamSpec("P")
R = TypeVar("R")

# Values `jsonable_encoder` returns as they are (exact types: a str or int subclass, an enum, goes through it).
_JSON_AS_IS: frozenset[type] = frozenset({str, int, float, bool, type(None)})


class ProductFlow(Flow[P, R]):
    """A Flow whose JSON-ready parameters are recorded without importing FastAPI."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if not (self.ismethod or self.isclassmethod) and all(type(v) in _JSON_AS_IS for v in parameters.values()):
            return dict(parameters)
        return super().serialize_parameters(parameters)

    def with_options(self, **options: Any) -> Flow[P, R]:
        """Prefect's copy is built as a plain `Flow`; the copy stays a ProductFlow (it holds no state of its own)."""
        copied = super().with_options(**options)
        if type(copied) is Flow:
            copied.__class__ = ProductFlow
        return copied


def product_flow(name: str) -> Callable[[Callable[P, R]], Flow[P, R]]:
    """`@product_flow("institution-enrollment")`: what `@flow(name=…, result_storage=…, persist_result=False)` was."""

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        return ProductFlow(fn=fn, name=name, result_storage=RESULT_STORAGE, persist_result=PERSIST_RESULT)

    return decorate
