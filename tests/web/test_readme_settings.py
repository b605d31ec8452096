"""The README's settings table names every setting (issue #19: "one table of every setting").

Found at the end of session 10: ten settings added for sign-in, uploads and the audit anchor were read by
core/settings.py and web/settings.py but missing from the table (some only in prose, three nowhere).
"""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings
from web.settings import WebSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def _settings_table() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `SANJIN_"))


def test_every_setting_of_both_classes_has_a_row_in_the_readmes_table() -> None:
    table = _settings_table()
    named = set(re.findall(r"`(SANJIN_[A-Z_]+)`", table))
    wanted = {f"SANJIN_{f.upper()}" for f in Settings.model_fields} | \
        {f"SANJIN_WEB_{f.upper()}" for f in WebSettings.model_fields}
    assert wanted - named == set(), f"settings missing from README's table: {sorted(wanted - named)}"
