"""The audit chains' heads as the last check saw them, recorded outside the database (issue #18).

Why: the head rows (`auditchainhead`) make rows cut off a chain's end evident, but someone who can write the
database — a superuser who disables the triggers — can cut the rows and move the head back together. A file
the database's administrators cannot write (SANJIN_HOME, or `SANJIN_AUDIT_HEADS_FILE` on other storage) keeps
the place and hash of each chain's newest row as every check (`sanjin audit verify`, the daily run) saw it;
the next check requires each chain to still hold that hash at that place. Per database (keyed by its URL,
password hidden), only ever moved forward, written whole and renamed into place.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from core.settings import get_settings

Heads = dict[int, tuple[int, str]]


def anchor_file() -> Path | None:
    setting = get_settings().audit_heads_file
    if setting.strip().lower() == "off":
        return None
    return Path(setting) if setting.strip() else get_settings().home / "audit-heads.json"


def database_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _read(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def recorded_heads(engine: Engine) -> Heads:
    """The heads recorded for this database ({} when none, or no file is kept)."""
    path = anchor_file()
    if path is None:
        return {}
    entry = _read(path).get(database_key(engine), {})
    heads = entry.get("heads", {}) if isinstance(entry, dict) else {}
    return {int(chain): (int(seq), str(digest)) for chain, (seq, digest) in dict(heads).items()}  # type: ignore[call-overload]


def record_heads(engine: Engine, heads: Heads) -> None:
    """Remember the heads a check found intact; a chain's recorded place never moves back."""
    path = anchor_file()
    if path is None or not heads:
        return
    data = _read(path)
    key = database_key(engine)
    merged = recorded_heads(engine)
    for chain, (seq, digest) in heads.items():
        if chain not in merged or seq >= merged[chain][0]:
            merged[chain] = (seq, digest)
    data[key] = {"checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "heads": {str(c): list(v) for c, v in sorted(merged.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, path)


__all__ = ["anchor_file", "record_heads", "recorded_heads"]
