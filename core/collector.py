"""Pausing Python's cycle collector around set-based work that makes 100,000s of containers.

A bulk step (an upload's rows, a list's 100,000 entries, a transition's rows read back to seal them) allocates
tuples, rows and dicts by the hundred thousand. Reference counting frees them; the cycle collector, triggered
by every 700 allocations, walks them again and again and finds nothing. Worse, when the step keeps 100,000 of
them alive for a while (a list's rows until its entries are written), the collector's full collection runs,
and a full collection walks every tracked object of the process: in a worker holding Prefect, its client and
FastAPI's models that is ~300,000 objects besides the step's own (figure 1's batch run: 0.2 s of collections
in the stage harness's small process, 0.4 s with Prefect imported; the upload's parsing: a third of its time).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cycle collection inside the block; restored afterwards (errors included) as it was before.

    Nested blocks leave it paused until the outermost ends. Cycles made inside are collected later, as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["collector_paused"]
