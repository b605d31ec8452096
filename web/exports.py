"""XLSX and CSV downloads of a table page: the same rows the page shows, every page of them, as one file.

A page handler that sees `?format=xlsx|csv` builds its rows with the filters and the user's scope it
uses for the page (issue #19: "what it shows"), without the paging, up to EXPORT_MAX rows, and answers
with this module's response. Cells that a spreadsheet would run as a formula are neutralised, the CSV
is UTF-8 with a BOM (Excel opens it in Chinese), the XLSX is the public lists' layout (title row, bold
frozen header, autofilter, landscape A4 with the header repeated on every printed page).
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tasks.lists.downloads import neutralized
from tasks.lists.xlsx_text import stream_text_xlsx, write_text_xlsx

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
EXPORT_MAX = 200_000  # rows in one download: a whole program's audit trail at provincial scale


def export_format(request: Request) -> str | None:
    """'xlsx' or 'csv' when the page is asked for as a file; None for the page; 400 for anything else."""
    fmt = (request.query_params.get("format") or "").strip().lower()
    if not fmt:
        return None
    if fmt not in FORMATS:
        raise HTTPException(400, f"不支持的导出格式：{fmt}（可选 xlsx、csv）")
    return fmt


def table_bytes(fmt: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """The file's bytes: every cell as text, formula-like text neutralised."""
    text_rows = neutralized([tuple("" if v is None else str(v) for v in row) for row in rows])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows(text_rows)
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="sanjin-export-") as folder:
        path = Path(folder) / "export.xlsx"
        write_text_xlsx(path, re.sub(r"[\[\]:*?/\\]", "", title)[:31] or "Sheet1", list(columns), text_rows, title=title)
        return path.read_bytes()


def download(fmt: str, stem: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]],
             today: date) -> Response:
    """The file as an attachment named `<stem>-<today>.<fmt>` (the Chinese name RFC 5987-encoded)."""
    name = f"{stem}-{today:%Y%m%d}.{fmt}"
    return Response(table_bytes(fmt, title, columns, rows), media_type=FORMATS[fmt],
                    headers={"Content-Disposition": f"attachment; filename=\"export.{fmt}\"; "
                                                    f"filename*=UTF-8''{quote(name)}"})


CHUNK = 1_000  # rows read (by key) and sent at a time by a streamed download
# The first chunk is smaller: the browser shows the download as started at its first bytes, and 1,000 rows of
# names and labels took 60–100 ms of CPU before them at 100,000 institutions (issue #19's 100 ms is to the first
# byte); later chunks are larger, as fewer seeks make the whole file quicker.
FIRST_CHUNK = 100


def chunk_size(first: bool) -> int:
    """Rows to read for the next chunk of a streamed download."""
    return FIRST_CHUNK if first else CHUNK


def stream(fmt: str, stem: str, title: str, columns: Sequence[str], chunks: Iterator[Sequence[Sequence[object]]],
           today: date) -> Response:
    """A long list's download, sent while it is read: `chunks` yields the rows a page's key at a time.

    A whole list at 100,000 rows takes seconds to read and write, so the first bytes leave after the first
    chunk (issue #19's 100 ms is the time to the first byte); the file is the same as `download`'s.
    """
    name = f"{stem}-{today:%Y%m%d}.{fmt}"
    texts = (neutralized([tuple("" if v is None else str(v) for v in row) for row in chunk]) for chunk in chunks)
    body: Iterator[bytes]
    if fmt == "csv":
        body = _csv_chunks(columns, texts)
    else:
        body = stream_text_xlsx(re.sub(r"[\[\]:*?/\\]", "", title)[:31] or "Sheet1", list(columns), texts, title=title)
    return StreamingResponse(body, media_type=FORMATS[fmt],
                             headers={"Content-Disposition": f"attachment; filename=\"export.{fmt}\"; "
                                                             f"filename*=UTF-8''{quote(name)}"})


def _csv_chunks(columns: Sequence[str], chunks: Iterator[Sequence[Sequence[str]]]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow(columns)
    for chunk in chunks:
        writer.writerows(chunk)
        yield out.getvalue().encode("utf-8")
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue().encode("utf-8")
