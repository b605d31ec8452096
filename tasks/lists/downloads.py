"""A version's downloads, the whole list as CSV (UTF-8 with BOM, for Excel) and XLSX, formula cells neutralised.

For a big list they are written by a child process, started as soon as the publisher knows the list
changed: the child writes the two files while this process stores the version and writes the HTML
pages, so on two cores the downloads cost little of the publication's time. The child is a plain
Python of this environment importing only this module (no database, no templates); the rows reach it
as one marshal file (tuples of strings: ≈10× quicker than pickle both ways).
"""

from __future__ import annotations

import csv
import marshal
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.lists.xlsx_text import write_text_xlsx

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHILD_MIN_ROWS = 20_000  # below this a child's start-up (≈0.1 s) costs more than the files themselves
CHILD_TIMEOUT = 600  # seconds: a child that takes longer is stopped and the publication fails
_FORMULA_AT_A_START = re.compile(r"(?:^|\x1f)[=+\-@\t\r]")


def neutralize(value: Any) -> str:
    """A cell that a spreadsheet would run as a formula is prefixed with an apostrophe (CSV/XLSX injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def neutralized(rows: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """`rows` with every formula-like cell neutralised; one search per row finds the rows that have one."""
    out = []
    for row in rows:
        # A \x1f inside a value can only make a row look suspect, never hide a cell's start.
        out.append(tuple(map(neutralize, row)) if _FORMULA_AT_A_START.search("\x1f".join(row)) else row)
    return out


def write_downloads(csv_path: Path, xlsx_path: Path, sheet_name: str, columns: Sequence[str],
                    rows: Sequence[tuple[str, ...]], title: str = "", number_columns: Sequence[int] = ()) -> None:
    """Both files of `rows` (in the order given), every text cell neutralised; the XLSX under `title`."""
    cells = neutralized(rows)
    with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(cells)
    write_text_xlsx(xlsx_path, sheet_name, columns, cells, title=title, number_columns=number_columns)


class DownloadsFailed(RuntimeError):
    pass


class Downloads:
    """The two files being written: by a child process for a big list, already written for a small one."""

    def __init__(self, csv_path: Path, xlsx_path: Path, process: subprocess.Popen[bytes] | None = None,
                 rows_file: Path | None = None) -> None:
        self.csv, self.xlsx = csv_path, xlsx_path
        self._process, self._rows_file = process, rows_file

    def wait(self) -> tuple[Path, Path]:
        """The finished files (csv, xlsx); raises, leaving neither, if the child failed."""
        if self._process is not None:
            try:
                _, errors = self._process.communicate(timeout=CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.cancel()
                raise DownloadsFailed(f"writing {self.xlsx.name} took over {CHILD_TIMEOUT} s") from None
            finally:
                self._forget_rows()
            if self._process.returncode != 0:
                self.cancel()
                raise DownloadsFailed(f"writing {self.csv.name} and {self.xlsx.name} failed: "
                                      f"{errors.decode(errors='replace')[-2000:]}")
            self._process = None
        return self.csv, self.xlsx

    def cancel(self) -> None:
        """Stop the child, if any (the publication failed elsewhere), and leave no file."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.communicate()
            self._process = None
        self._forget_rows()
        self.csv.unlink(missing_ok=True)
        self.xlsx.unlink(missing_ok=True)

    def _forget_rows(self) -> None:
        if self._rows_file is not None:
            self._rows_file.unlink(missing_ok=True)


def start_downloads(csv_path: Path, xlsx_path: Path, sheet_name: str, columns: Sequence[str],
                    rows: Sequence[tuple[str, ...]], title: str = "", number_columns: Sequence[int] = ()) -> Downloads:
    """write_downloads, by a child process when `rows` are many: wait() on the result for the files."""
    if len(rows) < CHILD_MIN_ROWS:
        write_downloads(csv_path, xlsx_path, sheet_name, columns, rows, title, number_columns)
        return Downloads(csv_path, xlsx_path)
    rows_file = xlsx_path.with_name(f".{xlsx_path.name}.rows")
    rows_file.write_bytes(marshal.dumps((str(csv_path), str(xlsx_path), sheet_name, tuple(columns), list(rows), title,
                                          tuple(number_columns))))
    root = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from tasks.lists.downloads import _child; _child()"
    try:
        process = subprocess.Popen([sys.executable, "-c", code, str(rows_file)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError:  # no child can be started here: write them in this process
        rows_file.unlink(missing_ok=True)
        write_downloads(csv_path, xlsx_path, sheet_name, columns, rows, title, number_columns)
        return Downloads(csv_path, xlsx_path)
    return Downloads(csv_path, xlsx_path, process, rows_file)


def _child() -> None:
    csv_path, xlsx_path, sheet_name, columns, rows, title, number_columns = marshal.loads(Path(sys.argv[1]).read_bytes())
    write_downloads(Path(csv_path), Path(xlsx_path), sheet_name, columns, rows, title, number_columns)
