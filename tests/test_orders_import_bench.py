"""The orders-import benchmark at a tiny size: every line is created, and each measurement reports its own peak RSS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import orders_import


def test_the_orders_import_benchmark_imports_every_line_beside_calamines_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANJIN_HOME", str(tmp_path / "home"))  # prepare_process points it at the run's folder
    out = tmp_path / "result.json"
    assert orders_import.main(["--orders", "300", "--institutions", "40", "--products", "10", "--db", "sqlite",
                               "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert (result["import"]["created"], result["calamine_floor"]["rows"], result["streaming_read"]["rows"]) == (
        300, 301, 301)
    assert all(result[k]["peak_rss_mb"] > 0 for k in ("import", "calamine_floor", "streaming_read"))
    assert "import rows/s ÷ floor rows/s" in capsys.readouterr().out
