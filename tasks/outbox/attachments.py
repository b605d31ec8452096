"""The files a notice carries, read for a claimed chunk in one query: today, issued report versions.

A notice's context names its attachments (`{"report_version_id": 7, "format": "xlsx", "filename": …,
"content_type": …}`) rather than holding their bytes, so the outbox stays small and the file sent is exactly the
version stored. A named version that is missing makes the notice fail permanently with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, select

from core.bulk import table_of
from models.reports import ReportVersion
from notifications.render import Attachment


class MissingAttachment(LookupError):
    """A notice names a stored file that is not there."""


def attachment_refs(contexts: Iterable[Mapping[str, Any]]) -> set[int]:
    """The report versions the contexts name."""
    return {int(a["report_version_id"]) for ctx in contexts for a in (ctx.get("attachments") or ())
            if a.get("report_version_id") is not None}


def load_report_files(engine: Engine, version_ids: set[int]) -> dict[int, tuple[bytes, str]]:
    """Each version's (XLSX bytes, HTML), one SELECT for the chunk."""
    if not version_ids:
        return {}
    v = table_of(ReportVersion)
    with engine.connect() as conn:
        return {int(i): (bytes(x), str(h)) for i, x, h in conn.execute(
            select(v.c.id, v.c.xlsx, v.c.html).where(v.c.id.in_(sorted(version_ids))))}


def attachments_of(context: Mapping[str, Any], files: Mapping[int, tuple[bytes, str]]) -> list[Attachment]:
    """The attachments a notice's context names, from the loaded files; MissingAttachment when one is gone."""
    out: list[Attachment] = []
    for ref in context.get("attachments") or ():
        stored = files.get(int(ref.get("report_version_id", -1)))
        if stored is None:
            raise MissingAttachment(f"report version {ref.get('report_version_id')} is not stored")
        data = stored[0] if ref.get("format", "xlsx") == "xlsx" else stored[1].encode("utf-8")
        out.append(Attachment(str(ref.get("filename") or "report"), str(ref.get("content_type") or
                                                                          "application/octet-stream"), data))
    return out


__all__ = ["MissingAttachment", "attachment_refs", "attachments_of", "load_report_files"]
