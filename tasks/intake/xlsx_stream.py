"""An XLSX worksheet read row by row, with the cell values python-calamine gives, in memory that does not grow.

python-calamine 0.9 builds the whole sheet before the first row is handed over: a 1,000,000-line order export
held ~824 MB in the reader alone and the import peaked at 1.17 GB (issue #14). Here the sheet's XML is unpacked
and parsed a slice at a time, each slice's rows turned into values and dropped before the next: by regular
expressions when the slice is in the plain form an export has (`_Plain`, ~2× less CPU), else by ElementTree.
Only the shared-strings table (one Python string per distinct text) and the style table stay for the whole read.

The values are calamine's, so the importers see the same text either way (tests/intake/test_xlsx_stream.py
compares the two on generated workbooks): numbers as floats, a number in a date-formatted cell as a date,
datetime, time or timedelta by the same format rules (tasks.intake.number_formats), booleans, shared and
inline strings with their `_xHHHH_` escapes undone and phonetic runs left out, error cells and formulas
without a cached value as "", and every row numbered as Excel numbers it, columns at their place.

Why slices and not `iterparse`: iterparse hands every element to Python as an event (three per text cell)
and keeps the finished rows attached to the tree unless the parent is captured with `start` events too;
measured on the benchmark's 1,000,000-row export it cost ~40 % more CPU than parsing whole rows in C. A
slice ends after a row's end tag; text cannot contain a literal `<`, so such a cut is never inside a cell
(a CDATA section or a comment holding `</row>` would make the slice malformed, and the file is refused as
damaged rather than misread).
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import repeat
from typing import IO, Any, NamedTuple, cast
from xml.etree.ElementTree import Element, ParseError, XMLPullParser, fromstring, iterparse
from xml.sax.saxutils import quoteattr

from tasks.intake.number_formats import CellFormat, builtin_format, custom_format

__all__ = ["StreamedSheet", "XlsxDamaged", "open_sheet"]

_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "/officeDocument"
_SLICE = 1 << 18  # unpacked bytes of sheet XML parsed at a time (a row is never cut): ~10 MB of elements


class XlsxDamaged(ValueError):
    """The package is an XLSX but a part is missing or malformed; the message says which (English, technical)."""


@dataclass
class StreamedSheet:
    """The chosen worksheet: its name and its rows from row 1, one list per Excel row (blank rows as [])."""

    name: str
    rows: Iterator[list[object]]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse_part(archive: zipfile.ZipFile, name: str) -> Element | None:
    try:
        data = archive.read(name)
    except KeyError:
        return None
    try:
        return fromstring(data)
    except ParseError as exc:
        raise XlsxDamaged(f"{name}: {exc}") from exc


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Id → (type, target part name) of `part`'s relationships, targets resolved against the part's folder."""
    folder, base = posixpath.split(part)
    root = _parse_part(archive, posixpath.join(folder, "_rels", base + ".rels"))
    out: dict[str, tuple[str, str]] = {}
    for rel in root if root is not None else ():
        target = rel.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        out[rel.get("Id", "")] = (rel.get("Type", ""), path)
    return out


def _unescape(text: str) -> str:
    """Excel writes characters XML cannot hold as `_xHHHH_` (a carriage return is `_x000D_`)."""
    return _ESCAPED.sub(_character, text) if "_x" in text else text


def _character(m: re.Match[str]) -> str:
    return chr(int(m[1], 16))


_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _rich_text(element: Element) -> str:
    """The text of an <si> or <is>: its <t>, or its runs' <t>s joined; phonetic guides (<rPh>) are not text."""
    parts: list[str] = []
    for child in element:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return _unescape("".join(parts))


def _shared_strings(archive: zipfile.ZipFile, name: str | None) -> list[str]:
    if name is None or name not in set(archive.namelist()):
        return []
    strings: list[str] = []
    root: Element | None = None
    try:
        with archive.open(name) as part:
            for event, element in iterparse(part, events=("start", "end")):
                if root is None:
                    root = element
                elif event == "end" and _local(element.tag) == "si":
                    strings.append(_rich_text(element))
                    root.clear()  # the finished <si>s; the table keeps only their text
    except (ParseError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise XlsxDamaged(f"{name}: {exc}") from exc
    return strings


def _cell_formats(archive: zipfile.ZipFile, name: str | None) -> list[CellFormat]:
    """The number-format kind of each cell style (cellXfs), as calamine classifies them."""
    root = _parse_part(archive, name) if name else None
    if root is None:
        return []
    custom: dict[str, CellFormat] = {}
    formats: list[CellFormat] = []
    for section in root:
        tag = _local(section.tag)
        if tag == "numFmts":
            custom.update((f.get("numFmtId", ""), custom_format(f.get("formatCode", ""))) for f in section)
        elif tag == "cellXfs":
            for xf in section:
                fmt_id = xf.get("numFmtId", "0")
                formats.append(custom[fmt_id] if fmt_id in custom else builtin_format(fmt_id))
    return formats


def open_sheet(data: bytes) -> StreamedSheet | None:
    """The first visible worksheet of an XLSX/XLSM package, or None when the zip is no such package (an ODS,
    an XLSB: python-calamine reads those). Raises XlsxDamaged for a package with missing or malformed parts."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    names = set(archive.namelist())
    workbook = next((target for typ, target in _relationships(archive, "").values()
                     if typ.endswith(_DOC_REL) and target in names), None) if "_rels/.rels" in names else None
    if workbook is None or not workbook.endswith(".xml"):
        return None  # an ODS has no such relationship; an XLSB's workbook is .bin
    root = _parse_part(archive, workbook)
    if root is None:
        return None
    rels = _relationships(archive, workbook)
    sheets: list[tuple[str, str, bool]] = []  # (name, part, visible) of the worksheets, in tab order
    date1904 = False
    for section in root:
        tag = _local(section.tag)
        if tag == "workbookPr":
            date1904 = section.get("date1904", "0").lower() in {"1", "true"}
        elif tag == "sheets":
            for sheet in section:
                rid = next((v for k, v in sheet.attrib.items() if _local(k) == "id"), "")
                typ, target = rels.get(rid, ("", ""))
                if typ.endswith("/worksheet"):
                    sheets.append((sheet.get("name", ""), target, sheet.get("state", "visible") == "visible"))
    if not sheets:
        raise XlsxDamaged("the workbook has no worksheet")
    name, part, _ = next((s for s in sheets if s[2]), sheets[0])
    if part not in names:
        raise XlsxDamaged(f"worksheet part {part} is missing")
    by_type = {typ.rpartition("/")[2]: target for typ, target in rels.values()}
    strings = _shared_strings(archive, by_type.get("sharedStrings"))
    formats = _cell_formats(archive, by_type.get("styles"))
    return StreamedSheet(name, _rows(archive, part, _Values(strings, formats, date1904)))


# --------------------------------------------------------------------------- cell values as calamine gives them

_MS_PER_DAY = 86_400_000
_EPOCH = datetime(1899, 12, 31)
_EPOCH_AFTER_LEAP_BUG = datetime(1899, 12, 30)  # Excel counts a 29 February 1900; serials from 60 on are one off
_NUMBER_CHARS = re.compile(r"[0-9.eE+\-]+|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


class _Values:
    """Turns a cell's type, style and raw text into calamine's value."""

    def __init__(self, strings: list[str], formats: list[CellFormat], date1904: bool) -> None:
        self.strings, self.formats, self.date1904 = strings, formats, date1904

    def number(self, text: str, style: str | None, typed: bool) -> object:
        try:
            if not _NUMBER_CHARS.fullmatch(text):  # float() also takes " 7" and "1_0"; Excel's parser does not
                raise ValueError(text)
            value = float(text)
        except ValueError:
            if typed:
                raise XlsxDamaged(f"cell value {text!r} is not a number") from None
            return text  # no type and not a number: calamine keeps the text
        if style is None:
            return value
        try:
            fmt = self.formats[int(style)]
        except (ValueError, IndexError):
            return value
        if fmt is CellFormat.DATETIME:
            return self.datetime(value)
        if fmt is CellFormat.TIMEDELTA:
            try:
                return timedelta(milliseconds=_round_ms(value * _MS_PER_DAY))
            except (OverflowError, ValueError):  # a huge number, an infinity or NaN under `[h]:mm`: the number,
                return value  # which the importer's column check then reports with its row (calamine raised here)
        return value

    def datetime(self, serial: float) -> object:
        """A time of day below 1, a date if the serial is whole, else a datetime (even one that rounds to
        midnight), to the millisecond."""
        days = serial + 1462 if self.date1904 else serial
        epoch = _EPOCH_AFTER_LEAP_BUG if days >= 60 else _EPOCH
        try:
            moment = epoch + timedelta(milliseconds=_round_ms(days * _MS_PER_DAY))
        except (OverflowError, ValueError):  # out of datetime's range, an infinity, or NaN: the number
            return serial
        if serial < 1:
            return moment.time()
        if serial.is_integer():
            return moment.date()
        return moment

    def iso(self, text: str) -> object:
        """A `t="d"` cell: ISO 8601 text, as a datetime, date or time where it parses."""
        for parse in (datetime.fromisoformat, time.fromisoformat):
            try:
                value = parse(text)
            except ValueError:
                continue
            if isinstance(value, datetime) and "T" not in text and " " not in text:
                return value.date()
            return value
        return text


def _shared(strings: list[str], index: str) -> str:
    """The shared string a `t="s"` cell names: its index in ASCII digits only (`int` also takes "-1", which
    named the last string, " 1 " and other scripts' digits)."""
    if not (index.isascii() and index.isdigit()):
        raise IndexError(index)
    return strings[int(index)]


def _round_ms(x: float) -> int:
    """Half away from zero, as Rust's f64::round (Python's round() goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


_COLUMN_CACHE: dict[str, int] = {}


def _column(ref: str) -> int:
    """0-based column of a reference such as "AB12"."""
    letters = ref.rstrip("0123456789")
    col = _COLUMN_CACHE.get(letters)
    if col is None:
        col = 0
        for ch in letters.upper():
            col = col * 26 + ord(ch) - 64
        col -= 1
        if col < 0 or len(letters) > 3:
            raise XlsxDamaged(f"cell reference {ref!r} is malformed")
        _COLUMN_CACHE[letters] = col
    return col


_SHEET_DATA = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?sheetData(?:\s[^>]*)?(/?)>")


def _head(part: IO[bytes], name: str) -> tuple[bytes, bytes, bytes] | None:
    """(the opening tags wrapping each slice, the closing tags, the bytes after <sheetData>) or None when the
    sheet has no data."""
    buf = b""
    while (m := _SHEET_DATA.search(buf)) is None:
        chunk = part.read(_SLICE)
        if not chunk:
            raise XlsxDamaged(f"{name}: no <sheetData>")
        buf += chunk
        if len(buf) > 64 * _SLICE:
            raise XlsxDamaged(f"{name}: no <sheetData> in the first {len(buf)} bytes")
    if m[2]:
        return None  # <sheetData/>
    # The namespaces in scope at <sheetData> — declared on its open ancestors, not on elements already closed
    # (a <sheetViews xmlns="…"> before it) — each prefix once, with its innermost value, declared again on each
    # slice's wrapper. Declaring every namespace ever seen gave the wrapper a prefix twice, which the regular
    # expressions read past and ElementTree refused: the two paths must agree (review8, session 15).
    parser: XMLPullParser[Element] = XMLPullParser(events=("start-ns", "end-ns"))
    try:
        parser.feed(buf[:m.start()])
    except (ParseError, ValueError) as exc:  # ValueError: a declared multi-byte encoding (GB2312, GBK)
        raise XlsxDamaged(f"{name}: {exc}") from exc
    declared: list[tuple[str, str]] = []
    for item in parser.read_events():
        event, data = cast(tuple[str, Any], item)  # ("start-ns", (prefix, uri)) or ("end-ns", None)
        if event == "start-ns":
            declared.append(cast(tuple[str, str], data))  # (prefix, uri)
        elif declared:  # "end-ns": its element closed, its declarations (the newest) leave scope one by one
            declared.pop()
    in_scope = dict(declared)  # later (inner) declarations of a prefix win
    # and <sheetData>'s own declarations (its tag is written bare below), each prefix once, winning over the rest
    if own := {ns_prefix: value for ns_prefix, value in _XMLNS.findall(m[0])}:
        tag: XMLPullParser[Element] = XMLPullParser(events=("start-ns",))
        try:
            tag.feed(b"<_n" + b"".join(b" xmlns" + (b":" + p if p else b"") + b"=" + v for p, v in own.items()) + b"/>")
        except ParseError as exc:
            raise XlsxDamaged(f"{name}: {exc}") from exc
        in_scope.update(cast(tuple[str, tuple[str, str]], item)[1] for item in tag.read_events())
    decls = b"".join(b" xmlns" + (b":" + ns_prefix.encode() if ns_prefix else b"") + b"=" + quoteattr(uri).encode()
                     for ns_prefix, uri in in_scope.items())
    prefix = m[1] + b":" if m[1] else b""
    # <sheetData> has no attribute a reader uses: written bare, so one ElementTree refuses (a duplicated
    # attribute) cannot refuse a slice the regular expressions read.
    opening = b"<_w" + decls + b"><" + prefix + b"sheetData>"
    closing = b"</" + prefix + b"sheetData></_w>"
    return opening, closing, buf[m.end():]


_PREFIX = re.compile(rb"(?:[A-Za-z_][\w.-]*:)?")
_XMLNS = re.compile(rb"""\sxmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*("[^"]*"|'[^']*')""")  # (prefix, quoted value)


def _after_last_row(buf: bytes) -> int:
    """The end of the last complete row end tag in `buf` (`</row>`, `</x:row>`), or -1."""
    at = len(buf)
    while (at := buf.rfind(b"row>", 0, at)) >= 0:
        start = buf.rfind(b"</", 0, at)
        if start >= 0 and _PREFIX.fullmatch(buf, start + 2, at):
            return at + 4
    return -1


def _slices(part: IO[bytes], name: str) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(opening, body of whole rows, closing) of each slice: `opening + body + closing` parses as a document whose
    root's one child is a <sheetData> holding the rows."""
    head = _head(part, name)
    if head is None:
        return
    opening, closing, buf = head
    end_tag = closing[:-len(b"</_w>")]
    while True:
        chunk = part.read(_SLICE)
        buf += chunk
        if chunk:
            cut = _after_last_row(buf)
            if cut < 0:
                continue
            body, buf = buf[:cut], buf[cut:]
        else:
            stop = buf.find(end_tag)
            if stop < 0:
                raise XlsxDamaged(f"{name}: the sheet ends without </sheetData>")
            body, buf = buf[:stop], b""
        yield opening, body, closing
        if not chunk:
            return


def _rows(archive: zipfile.ZipFile, part_name: str, values: _Values) -> Iterator[list[object]]:
    """Every row from row 1 (blank and missing rows as []), each cell at its column ("" where there is none).

    A slice in the plain form (`_Plain`) is read by regular expressions; any other slice by ElementTree, the same
    rows either way (tests/tasks/test_xlsx_stream.py)."""
    expected = 0  # rows yielded so far = the number of the last one
    try:
        with archive.open(part_name) as part:
            tags_by_ns: dict[str, _Tags] = {}
            plain: _Plain | None = None
            for opening, body, closing in _slices(part, part_name):
                if plain is None:
                    plain = _Plain(opening)
                fast = plain.rows(body, values, part_name)
                if fast is not None:
                    for index, cells in fast:
                        if index <= expected:
                            raise XlsxDamaged(f"{part_name}: row {index} after row {expected}")
                        while expected + 1 < index:
                            expected += 1
                            yield []
                        expected = index
                        yield cells
                    continue
                try:
                    sheet_data = fromstring(opening + body + closing)[0]
                except ParseError as exc:
                    raise XlsxDamaged(f"{part_name}: {exc}") from exc
                for row in sheet_data:
                    # Tags are compared whole ("{namespace}c"), not split per cell; the namespace is the row's own,
                    # since calamine reads rows by local name whatever their namespace.
                    ns = row.tag[:row.tag.find("}") + 1]
                    tags = tags_by_ns.get(ns) or tags_by_ns.setdefault(ns, _Tags(ns + "c", ns + "v", ns + "is", ns + "t"))
                    r = row.get("r")
                    index = int(r) if r else expected + 1
                    if index <= expected:
                        raise XlsxDamaged(f"{part_name}: row {index} after row {expected}")
                    while expected + 1 < index:
                        expected += 1
                        yield []
                    expected = index
                    yield _cells(row, tags, values, part_name)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise XlsxDamaged(f"{part_name}: {exc}") from exc


class _Tags(NamedTuple):
    c: str
    v: str
    inline: str
    t: str


def _cells(row: Element, tags: _Tags, values: _Values, part_name: str) -> list[object]:
    """One row's cells; the hot loop of a million-row import, so the common cases come first."""
    cells: list[object] = []
    col = 0
    c_tag, v_tag, is_tag, t_tag = tags
    known = _COLUMN_CACHE
    for c in row:
        if c.tag != c_tag:
            continue  # <extLst> and the like
        ref = c.get("r")
        if ref is not None:
            col = known.get(ref.rstrip("0123456789"), -1)
            if col < 0:
                col = _column(ref)
        value: object = ""
        typ = c.get("t")
        for child in c:
            tag = child.tag
            if tag == v_tag:
                if typ == "inlineStr" or typ == "is":
                    continue  # calamine reads the <is>, never a <v> beside it
                text = child.text or ""
                if typ == "s":
                    if text:
                        try:
                            value = _shared(values.strings, text)
                        except (ValueError, IndexError):
                            raise XlsxDamaged(f"{part_name}: shared string {text!r} not in the table") from None
                elif typ is None or typ == "n":
                    if text:
                        value = values.number(text, c.get("s"), typ is not None)
                elif typ == "str":
                    value = text
                elif typ == "b":
                    value = text != "0"
                elif typ == "d":
                    value = values.iso(text)
                elif typ == "e":
                    value = ""  # #DIV/0!, #N/A: python-calamine gives ""
                else:
                    raise XlsxDamaged(f"{part_name}: unknown cell type {typ!r}")
            elif tag == is_tag:
                if len(child) == 1 and child[0].tag == t_tag:  # plain inline text, no runs
                    text = child[0].text or ""
                    value = _unescape(text) if "_x" in text else text
                else:
                    value = _rich_text(child)
        if col == len(cells):
            cells.append(value)
        elif col > len(cells):
            cells.extend([""] * (col - len(cells)))
            cells.append(value)
        else:
            cells[col] = value
        col += 1
    return cells


# --------------------------------------------------------------------------- the plain form, read without a tree
# A cell as Excel, xlsxwriter and openpyxl write the common cases: a reference, a style, and a number, a shared
# string, a formula's cached text or an inline string, with no entity, formula, rich text or attribute besides.
# Groups: column letters, style, inline text, type (n, s, str; "" when absent), <v>'s text.
# Text holds no markup, no entity, and nothing XML cannot hold literally or ElementTree gives otherwise (a CR
# becomes a LF); "]]>", which XML refuses in text, is looked for in the slice as a whole.
_TEXT = r"([^<&\x00-\x08\x0b-\x1f\ufffe\uffff]*)"
_CELL = ('<c r="([A-Z]{1,3})[0-9]{1,7}"(?: s="([0-9]{1,9})")?'
         '(?: t="inlineStr"(?:/>|></c>|><is><t(?: xml:space="preserve")?>' + _TEXT + '</t></is></c>)'
         '|(?: t="(n|s|str)")?(?:/>|></c>|><v>' + _TEXT + '</v></c>))')
# A row's attributes as Excel orders them, each at most once (so the XML is well-formed); x14ac:dyDescent only
# where the sheet declares its prefix.
_ROW_ATTRS = ('(?: spans="[0-9:]{0,20}")?(?: s="[0-9]{1,9}")?(?: customFormat="(?:0|1|true|false)")?'
              '(?: ht="[0-9.]{1,20}")?(?: hidden="(?:0|1|true|false)")?(?: customHeight="(?:0|1|true|false)")?'
              '(?: outlineLevel="[0-9]")?(?: collapsed="(?:0|1|true|false)")?')
_DY_DESCENT = '(?: x14ac:dyDescent="[0-9.]{1,20}")?'
_CELLS = re.compile(_CELL)
_LETTERS = tuple(chr(65 + i) for i in range(26)) + tuple(chr(64 + i // 26) + chr(65 + i % 26) for i in range(26, 702))


def _uncaptured(pattern: str) -> str:
    return re.sub(r"\((?!\?)", "(?:", pattern)


class _Plain:
    """A sheet's slices read by regular expressions when every row and cell in them is in the plain form.

    The rows are those ElementTree and `_cells` give: the rows found must cover the slice to its last character
    (so nothing in it is skipped or misread), and anything else (a prefix, an entity, a formula, rich text, a
    boolean or error cell, a CR) sends the slice to ElementTree. A 1,000,000-line order export spent ~60 % of its
    import in the tree (issue #14).
    """

    def __init__(self, opening: bytes) -> None:
        attrs = _ROW_ATTRS + (_DY_DESCENT if b" xmlns:x14ac=" in opening else "")
        # Groups: the row number, its other attributes, what follows them (for the length), the cells.
        self.row = re.compile('<row r="([0-9]{1,7})"(' + attrs + ')(/>|>((?:' + _uncaptured(_CELL) + ')*)</row>)')

    def rows(self, body: bytes, values: _Values, part_name: str) -> list[tuple[int, list[object]]] | None:
        """(row number, cells) of each row of the slice, or None when the slice is not all in the plain form."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        found: list[tuple[str, str, str, str]] = self.row.findall(text)
        if not found:
            return None if text else []
        numbers, attrs, tails, inners = zip(*found, strict=True)
        # Matches do not overlap: their lengths add up to the slice's only if nothing lies between them.
        if (len('<row r=""') * len(found) + sum(map(len, numbers)) + sum(map(len, attrs)) + sum(map(len, tails))
                != len(text) or "]]>" in text):
            return None
        try:
            return self._regular(text, numbers, inners, values) or self._by_row(numbers, inners, values)
        except Exception:  # read again by ElementTree, which raises it after the rows before it
            return None

    @staticmethod
    def _regular(text: str, numbers: tuple[str, ...], inners: tuple[str, ...],
                 values: _Values) -> list[tuple[int, list[object]]] | None:
        """A slice whose every row has the same cells A, B, C, … (an export's usual form), read a column at a time;
        None when its rows differ."""
        width = inners[0].count("<c ")
        if not width or list(map(str.count, inners, repeat("<c "))).count(width) != len(inners):
            return None
        cells: list[tuple[str, str, str, str, str]] = _CELLS.findall(text)
        letters, styles, inline, types, raw = zip(*cells, strict=True)
        if letters != _LETTERS[:width] * len(inners):
            return None
        escaped = "_x" in text
        if not escaped and not any(types) and not any(raw):  # inline strings (or empty cells) throughout
            return list(zip(map(int, numbers), map(list, zip(*[iter(inline)] * width, strict=True)), strict=True))
        columns: list[Sequence[object]] = []
        strings = values.strings
        for k in range(width):
            kinds, texts = types[k::width], raw[k::width]
            if kinds.count("s") == len(kinds):
                columns.append([_shared(strings, v) if v else "" for v in texts])
            elif not escaped and not any(kinds) and not any(texts):
                columns.append(inline[k::width])
            else:
                columns.append([_plain_value(*cell, values)
                                for cell in zip(styles[k::width], inline[k::width], kinds, texts, strict=True)])
        return list(zip(map(int, numbers), map(list, zip(*columns, strict=True)), strict=True))

    @staticmethod
    def _by_row(numbers: tuple[str, ...], inners: tuple[str, ...], values: _Values) -> list[tuple[int, list[object]]]:
        return [(int(r), _plain_cells(_CELLS.findall(inner), values)) for r, inner in zip(numbers, inners, strict=True)]


def _plain_value(style: str, inline: str, typ: str, raw: str, values: _Values) -> object:
    """One cell's value from `_Plain`'s match, as `_cells` reads the same XML."""
    if typ == "s":
        if not raw:
            return ""
        try:
            return _shared(values.strings, raw)
        except (ValueError, IndexError):
            raise XlsxDamaged(f"shared string {raw!r} not in the table") from None  # read again by ElementTree
    if typ == "str":
        return raw
    if raw:  # a number, typed "n" or untyped
        return values.number(raw, style or None, typ == "n")
    if typ:
        return ""
    return _unescape(inline) if "_x" in inline else inline  # an inline string, or an untyped cell without a value


def _plain_cells(cells: list[tuple[str, str, str, str, str]], values: _Values) -> list[object]:
    """One row's cells from `_Plain`'s matches, each at its column as `_cells` places them."""
    out: list[object] = []
    known = _COLUMN_CACHE
    for letters, style, inline, typ, raw in cells:
        col = known.get(letters, -1)
        if col < 0:
            col = _column(letters)
        value = _plain_value(style, inline, typ, raw, values)
        if col == len(out):
            out.append(value)
        elif col > len(out):
            out.extend([""] * (col - len(out)))
            out.append(value)
        else:
            out[col] = value
    return out
