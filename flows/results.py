"""Where Prefect would keep flow results: nowhere, on purpose, and said once for every flow.

The database is the truth (DESIGN.md); a flow's return value is a small summary shown in Prefect's UI and
never read back, so no flow persists its result (`persist_result=False`, as Prefect's default already
was). Every flow still names a storage: when a flow names none, Prefect asks the API for the server's
default result storage at the start of every flow run, twice, each time through a newly built client
(measured with Prefect 3.8.8: 10 lookups in 5 runs, 0 with a storage named). A path, not a block,
because a block would have to be saved on the server first; nothing is written there while results are
not persisted.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

RESULT_STORAGE = Path(tempfile.gettempdir()) / "sanjin-prefect-results"
PERSIST_RESULT = False

__all__ = ["PERSIST_RESULT", "RESULT_STORAGE"]
