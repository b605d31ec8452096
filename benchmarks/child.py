"""One benchmark in its own process (so figure 7 can give each its own peak RSS).

    python -m benchmarks.child FIGURE CONFIG.json RESULT.json

The runner starts it with PREFECT_API_URL pointing at its Prefect test-harness server.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    figure, config_path, result_path = argv
    cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
    from benchmarks.env import prepare_process

    prepare_process(Path(cfg["home"]))
    from benchmarks.instrument import peak_rss_mb

    start = time.perf_counter()
    try:
        if figure == "floor":  # figure 7's baseline: Python + Prefect + the product imported, nothing run
            import prefect  # noqa: F401

            import flows.program  # noqa: F401
            import tasks.intake.application_import
            import tasks.intake.declaration_import
            import tasks.lists.files
            import tasks.platform.accounts
            import tasks.platform.contracts
            import tasks.platform.selections  # noqa: F401

            result: dict[str, object] = {}
        elif figure == "enrollment":
            from benchmarks import enrollment as module

            result = module.run(cfg)
        elif figure == "reminders":
            from benchmarks import mail as module  # type: ignore[no-redef]

            result = module.run(cfg)
        elif figure == "web":
            from benchmarks import web as module  # type: ignore[no-redef]

            result = module.run(cfg)
        elif figure == "publication":
            from benchmarks import publication as module  # type: ignore[no-redef]

            result = module.run(cfg)
        elif figure == "compliance":
            from benchmarks import compliance as module  # type: ignore[no-redef]

            result = module.run(cfg)
        elif figure == "gate":
            from benchmarks import gate as module  # type: ignore[no-redef]

            result = module.run(cfg)
        elif figure == "topology":
            from benchmarks import topology as module  # type: ignore[no-redef]

            result = module.run(cfg)
        else:
            raise SystemExit(f"unknown figure {figure!r}")
        result["status"] = "ok"
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "error", "error": f"{exc.__class__.__name__}: {exc}"}
    result["process_seconds"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mb_self"] = round(peak_rss_mb(), 1)
    Path(result_path).write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
