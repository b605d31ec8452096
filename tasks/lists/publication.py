"""Publishing the public lists: a new version on change, its files, a diff page per version, an index.

The drug list is the one list a person approves (seed 000 §三(二)): a candidate that adds or changes a
drug waits for the manager's list-approval gate (opened by `tasks.phases.drug_list`), and its approval
publishes it. What needs nobody is taking drugs *off* the list — an enterprise disqualified, exited or
barred (seeds 000, 001, 004) must leave the public list at once — and going back to content the manager
already approved. The institution list follows the batches a person already approved, so it has no gate.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db import transaction
from models.catalog import ListVersion, list_gate_key
from models.clock import Clock, to_shanghai
from models.enrollment import Gate
from models.gate_decisions import any_approved
from models.program import Program
from models.states import GateKind, GateState, ListKind
from tasks.lists.downloads import Downloads
from tasks.lists.files import TITLES, html_rows, render_version, start_version_downloads, stem_of
from tasks.lists.versions import (
    ListRows,
    PublishedVersion,
    columns_of,
    compute_rows,
    diff_rows,
    latest_version,
    publish_rows,
    stored_entries,
    stored_texts,
    version_rows,
)
from tasks.programs import get_program

PUBLISHABLE = (ListKind.DRUGS, ListKind.INSTITUTIONS)  # the recommended list rides with the drug list
DIFF_ROWS = 5_000  # rows listed per section of a diff page


class UnknownList(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"没有名为 {name!r} 的公开名单 / no public list {name!r} "
                         f"(choose from: {', '.join(k.value for k in PUBLISHABLE)})")


class Outcome(StrEnum):
    PUBLISHED = "published"  # a new version was written
    UNCHANGED = "unchanged"  # the content equals the latest version
    AWAITING_APPROVAL = "awaiting_approval"  # drugs added or changed: the manager's list-approval gate first
    EMPTY = "empty"  # never published and nothing to publish: no empty first version goes public
    FILES_ONLY = "files_only"  # not checked this run; only missing files of existing versions were written


@dataclass(frozen=True)
class PublishedFiles:
    """What one run did to one list; `files` are the newest version's, keyed html/xlsx/csv/diff."""

    kind: ListKind
    outcome: Outcome
    version: int | None
    rendered: tuple[int, ...]
    files: Mapping[str, Path]
    index: Path
    gate_id: int | None = None  # AWAITING_APPROVAL: the open list-approval gate, once drug_list opened it
    pending: Mapping[str, int] = field(default_factory=dict)  # AWAITING_APPROVAL: added/removed/changed

    def as_json(self) -> dict[str, Any]:
        return {"list": self.kind.value, "outcome": self.outcome.value, "version": self.version,
                "rendered": list(self.rendered), "files": {k: str(p) for k, p in self.files.items()},
                "index": str(self.index), "gate_id": self.gate_id, "pending": dict(self.pending)}


@dataclass(frozen=True)
class _Checked:
    outcome: Outcome
    gate_id: int | None = None
    pending: Mapping[str, int] = field(default_factory=dict)
    published: PublishedVersion | None = None  # PUBLISHED by this run: its files are rendered from memory
    started: _Started | None = None  # ... and its downloads were begun before the version's commit


@dataclass(frozen=True)
class _Started:
    """A new version's downloads, begun (by a child process, for a big list) while the version is stored."""

    scratch: Path
    downloads: Downloads

    def discard(self) -> None:
        self.downloads.cancel()
        shutil.rmtree(self.scratch, ignore_errors=True)


def gate_free_reason(diff: Mapping[str, Sequence[str]], digest: str, approved_digest: str | None) -> str | None:
    """Why a drug-list candidate may go public without the manager; None when it needs the approval gate."""
    if approved_digest is not None and digest == approved_digest:
        return "恢复为已批准的清单 / back to the approved list"
    if diff["added"] or diff["changed"]:
        return None
    # Unchanged drugs still pass: the recommended list riding with them may have changed.
    return "仅移除品种 / entries removed only" if diff["removed"] else "scheduled republication"


def _approved_digest(session: Session, program: Program) -> str | None:
    """Content hash of the newest drug-list version that a list-approval gate approved."""
    gates = session.exec(select(Gate).where(Gate.program_id == program.id, Gate.kind == GateKind.LIST_APPROVAL,
                                            Gate.state == GateState.DECIDED)).all()
    approved = {g.natural_key for g in gates if any_approved(g.decision)}
    hashes = session.exec(select(ListVersion.content_hash).where(
        ListVersion.program_id == program.id, ListVersion.kind == ListKind.DRUGS)
        .order_by(col(ListVersion.number).desc())).all()
    return next((h for h in hashes if list_gate_key(program.slug, h) in approved), None)


def _lock_program(session: Session, program_id: int) -> None:
    """One publisher per program at a time, each reading what the one before committed.

    Without it two publishers (the schedule and `sanjin publish`) both find "changed", the first
    writes version N and the second, numbering after that commit, writes N+1 with the same content.
    A no-op UPDATE is the portable lock: a row lock on PostgreSQL, the write lock on SQLite.
    """
    session.execute(update(Program).where(col(Program.id) == program_id).values(id=col(Program.id)))


def _publish_once(engine: Engine, slug: str, kind: ListKind, *, clock: Clock, actor: str,
                  target: Path) -> dict[ListKind, _Checked]:
    started: list[_Started] = []
    try:
        return _publish_in_transaction(engine, slug, kind, clock=clock, actor=actor, target=target, started=started)
    except BaseException:  # the version was not stored: nor are its files
        for files in started:
            files.discard()
        raise


def _publish_in_transaction(engine: Engine, slug: str, kind: ListKind, *, clock: Clock, actor: str, target: Path,
                            started: list[_Started]) -> dict[ListKind, _Checked]:
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        _lock_program(session, program.id)
        rows = compute_rows(session, program.id, kind)
        latest = latest_version(session, program.id, kind)
        if latest is None and not rows:
            return {kind: _Checked(Outcome.EMPTY)}
        reason: str | None = "scheduled republication"
        if kind == ListKind.DRUGS:
            old = stored_texts(session, latest.id) if latest is not None and latest.id is not None else {}
            diff = diff_rows(old, rows)
            digest = rows.digest()
            reason = gate_free_reason(diff, digest, _approved_digest(session, program))
            if reason is None:
                gate_id = session.exec(select(Gate.id).where(Gate.natural_key == list_gate_key(slug, digest),
                                                             Gate.state == GateState.OPEN)).first()
                return {kind: _Checked(Outcome.AWAITING_APPROVAL, gate_id, {k: len(v) for k, v in diff.items()})}
        if latest is None or latest.content_hash != rows.digest():  # a new version: its downloads start now
            started.append(_start_files(kind, rows, target))
        riders = [ListKind.RECOMMENDED] if kind == ListKind.DRUGS and defn.rules.has_recommended_list else []
        before = {r: latest_version(session, program.id, r) for r in riders}
        published = publish_rows(session, program, defn, kind, clock=clock, actor=actor, reason=reason, rows=rows)
        if published is None:
            for files in started:
                files.discard()
            out = {kind: _Checked(Outcome.UNCHANGED)}
        else:
            out = {kind: _Checked(Outcome.PUBLISHED, published=published, started=started[0] if started else None)}
        for rider in riders:
            now_latest, was = latest_version(session, program.id, rider), before[rider]
            changed = now_latest is not None and (was is None or now_latest.number != was.number)
            out[rider] = _Checked(Outcome.PUBLISHED if changed else
                                  Outcome.UNCHANGED if now_latest is not None else Outcome.EMPTY)
        return out


def _start_files(kind: ListKind, rows: ListRows, target: Path) -> _Started:
    """A scratch folder beside the published files, and the version's downloads begun in it."""
    scratch = Path(tempfile.mkdtemp(prefix=".render-", dir=target))
    try:
        return _Started(scratch, start_version_downloads(kind, rows, scratch))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _publish_checked(engine: Engine, slug: str, kind: ListKind, *, clock: Clock, actor: str,
                     target: Path) -> dict[ListKind, _Checked]:
    """Publish once; a second try when a publisher outside this module (a gate's approval, the continuous
    review's republication) took the same version number (unique key) meanwhile."""
    try:
        return _publish_once(engine, slug, kind, clock=clock, actor=actor, target=target)
    except IntegrityError:  # the winner's version is now the latest: this try finds it unchanged or diffs from it
        return _publish_once(engine, slug, kind, clock=clock, actor=actor, target=target)


def _paths(program: Program, version: ListVersion, target: Path) -> dict[str, Path]:
    """A version's files as the index links them (its HTML pages hang off the entry page, `html`)."""
    stem = stem_of(program, version)
    return {"html": target / f"{stem}.html", "xlsx": target / f"{stem}.xlsx", "csv": target / f"{stem}.csv",
            "diff": target / f"{stem}-diff.html"}


def _write_atomically(path: Path, text: str) -> None:
    """Readers (a web server) never see half a page; a crash leaves the old file or none."""
    # Not mkstemp: its 0600 mode would survive the rename and hide the page from the web server.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _render(session: Session, program: Program, version: ListVersion, previous: ListVersion | None,
            target: Path, published: PublishedVersion | None = None, started: _Started | None = None) -> None:
    """All files of one version, written beside and then moved in, so a file present is a complete file.

    The entry page moves in last: with it present, its pages are too (they moved in before it), and
    a version whose entry page is missing is rendered again whole.
    """
    assert version.id is not None
    scratch = started.scratch if started is not None else Path(tempfile.mkdtemp(prefix=".render-", dir=target))
    try:
        if published is not None:
            rows, old = published.rows, published.previous
        else:
            rows = version_rows(session, version.id, columns_of(version.kind))
            keys = [*version.diff.get("removed", []), *version.diff.get("changed", [])]
            old = stored_entries(session, previous.id, keys) if previous is not None and previous.id else {}
        downloads = started.downloads if started is not None else start_version_downloads(version.kind, rows, scratch)
        written = render_version(session, program, version, scratch, rows=rows, downloads=downloads)
        (scratch / "diff.html").write_text(diff_page(program, version, old, rows), encoding="utf-8")
        final = _paths(program, version, target)
        moves = [(p, target / p.name) for k, p in written.items() if k.startswith("page-")]
        moves += [(written["csv"], final["csv"]), (written["xlsx"], final["xlsx"]),
                  (scratch / "diff.html", final["diff"]), (written["html"], final["html"])]
        for source, destination in moves:
            os.replace(source, destination)
    finally:
        if started is not None:
            started.downloads.cancel()  # no-op once its files moved in; stops a child left running by a failure
        shutil.rmtree(scratch, ignore_errors=True)


def publish(
    engine: Engine,
    slug: str,
    lists: Sequence[str] = ("drugs", "institutions"),
    *,
    clock: Clock,
    actor: str = "system",
    out_dir: Path,
) -> list[PublishedFiles]:
    """Publish the named lists where changed, then write every version's missing files and the index.

    Safe to run as often as a schedule likes: an unchanged list writes nothing, a version with all
    its files is not rendered again, and the index is rewritten from the database each time.
    """
    kinds = []
    for name in (lists,) if isinstance(lists, str) else lists:  # "drugs" alone is one list, not five letters
        if name not in {k.value for k in PUBLISHABLE}:
            raise UnknownList(name)
        kinds.append(ListKind(name))
    target = out_dir / slug
    target.mkdir(parents=True, exist_ok=True)
    checked: dict[ListKind, _Checked] = {}
    try:
        for kind in kinds:
            checked.update(_publish_checked(engine, slug, kind, clock=clock, actor=actor, target=target))
        with Session(engine) as session:
            program, _ = get_program(session, slug)
            versions = list(session.exec(select(ListVersion).where(ListVersion.program_id == program.id)
                                         .order_by(col(ListVersion.kind), col(ListVersion.number))).all())
            fresh = {(c.published.version.kind, c.published.version.number): c
                     for c in checked.values() if c.published is not None}
            rendered: dict[ListKind, list[int]] = {}
            previous: dict[ListKind, ListVersion] = {}
            for version in versions:
                if not all(p.exists() for p in _paths(program, version, target).values()):
                    mine = fresh.pop((version.kind, version.number), None)
                    _render(session, program, version, previous.get(version.kind), target,
                            mine.published if mine else None, mine.started if mine else None)
                    rendered.setdefault(version.kind, []).append(version.number)
                previous[version.kind] = version
    finally:  # downloads begun for a version whose files were not written (a failure): stopped, removed
        for state in checked.values():
            if state.started is not None and state.started.scratch.exists():
                state.started.discard()
    index = target / "index.html"
    _write_atomically(index, index_page(program, versions))
    results = []
    for kind in ListKind:
        if kind not in checked and kind not in rendered:
            continue
        state = checked.get(kind, _Checked(Outcome.FILES_ONLY))
        newest = previous.get(kind)
        results.append(PublishedFiles(
            kind=kind, outcome=state.outcome, version=None if newest is None else newest.number,
            rendered=tuple(rendered.get(kind, ())), files={} if newest is None else _paths(program, newest, target),
            index=index, gate_id=state.gate_id, pending=state.pending))
    return results


# ---- the pages: autoescaped, so a name such as "<script>" or "=HYPERLINK(...)" is shown, never run ----

_STYLE = """<style>
 body { font-family: "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }
 h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
 table { border-collapse: collapse; width: 100%; font-size: .9em; }
 th, td { border: 1px solid #ccc; padding: .3em .5em; text-align: left; } th { background: #f3f5f8; }
 .meta { color: #666; } .old { color: #a33; text-decoration: line-through; } .new { color: #272; }
</style>"""

_INDEX = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ name }} · 公开名单</title>""" + _STYLE + """</head>
<body>
<h1>{{ name }} · “三进”公开名单</h1>
{% for s in sections %}<h2>{{ s.title }}</h2>
<table><thead><tr><th>版本</th><th>发布时间（北京时间）</th><th>条目数</th><th>新增</th><th>移除</th><th>变更</th>
<th>下载</th></tr></thead>
<tbody>
{% for v in s.versions %}<tr><td>第{{ v.number }}版{% if loop.first %}（最新）{% endif %}</td><td>{{ v.published }}</td>
<td>{{ v.count }}</td><td>{{ v.added }}</td><td>{{ v.removed }}</td><td>{{ v.changed }}</td>
<td><a href="{{ v.html }}">网页</a> · <a href="{{ v.xlsx }}">Excel</a> · <a href="{{ v.csv }}">CSV</a> · <a href="{{ v.diff }}">变更明细</a></td></tr>
{% endfor %}</tbody></table>
{% else %}<p class="meta">尚未发布名单。</p>
{% endfor %}</body></html>
"""

_DIFF = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ title }}</title>""" + _STYLE + """</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">{% if number > 1 %}相对第{{ number - 1 }}版{% else %}首次发布{% endif %}：新增 {{ sections[0][1] }}，移除 {{ sections[1][1] }}，变更 {{ changed|length }}。
<a href="index.html">全部版本</a> · <a href="{{ page }}">本版名单</a></p>
{% for heading, total, rows, rest in sections %}<h2>{{ heading }}（{{ total }}）</h2>
{% if total %}<table><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{{ rows }}</tbody></table>{% if total > limit %}<p class="meta">仅列出前 {{ limit }} 条，{{ rest }}。</p>{% endif %}
{% else %}<p class="meta">无</p>{% endif %}
{% endfor %}<h2>变更（{{ changed|length }}）</h2>
{% if changed %}<table><thead><tr><th>{{ columns[0] }}</th><th>{{ columns[1] }}</th><th>字段</th><th>原值 → 新值</th></tr></thead><tbody>
{% for key, name, field, old, new in changed_fields %}<tr><td>{{ key }}</td><td>{{ name }}</td><td>{{ field }}</td>
<td><span class="old">{{ old }}</span> → <span class="new">{{ new }}</span></td></tr>
{% endfor %}</tbody></table>{% else %}<p class="meta">无</p>{% endif %}
</body></html>
"""

_ENV = Environment(autoescape=True, keep_trailing_newline=True)
_INDEX_PAGE, _DIFF_PAGE = _ENV.from_string(_INDEX), _ENV.from_string(_DIFF)


def diff_page(program: Program, version: ListVersion, old: Mapping[str, Mapping[str, Any]], new: ListRows) -> str:
    """What this version added, removed and changed since the previous one, each changed field old → new.

    The keys come from the version's own diff; `old` needs only the previous entries it removed or
    changed. A long section (a first version adds the whole list) lists its first DIFF_ROWS rows.
    """
    columns = new.columns
    diff = {k: list(version.diff.get(k, [])) for k in ("added", "removed", "changed")}
    changed_fields = []
    for key in diff["changed"]:
        if key in old and key in new.rows:
            before, after = old[key], new.entry(key)
            changed_fields += [(key, after.get(columns[1], ""), c, before.get(c, ""), after.get(c, ""))
                               for c in columns if before.get(c) != after.get(c)]
    added = [new.rows[k] for k in diff["added"][:DIFF_ROWS] if k in new.rows]
    removed = [tuple("" if old[k].get(c) is None else str(old[k].get(c)) for c in columns)
               for k in diff["removed"][:DIFF_ROWS] if k in old]
    sections = [("新增", len(diff["added"]), html_rows(added, None), "其余见本版名单"),
                ("移除", len(diff["removed"]), html_rows(removed, None), "其余见上一版名单")]
    return _DIFF_PAGE.render(
        title=f"{program.name} {TITLES[version.kind]} 第{version.number}版 变更明细", number=version.number,
        columns=columns, sections=sections, limit=DIFF_ROWS, changed=diff["changed"],
        changed_fields=changed_fields, page=quote(f"{stem_of(program, version)}.html"))


def index_page(program: Program, versions: Sequence[ListVersion]) -> str:
    """Every version of every list, newest first, with its diff counts and links to its files."""
    sections = []
    for kind in ListKind:
        mine = sorted((v for v in versions if v.kind == kind), key=lambda v: v.number, reverse=True)
        if mine:
            sections.append({"title": TITLES[kind], "versions": [
                {"number": v.number, "published": f"{to_shanghai(v.published_at):%Y-%m-%d %H:%M}",
                 "count": v.entry_count, "added": v.added, "removed": v.removed, "changed": v.changed,
                 **{k: quote(p.name) for k, p in _paths(program, v, Path()).items()}}
                for v in mine]})
    return _INDEX_PAGE.render(name=program.name, sections=sections)
