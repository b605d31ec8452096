"""Login names → the names people read, for every template (the `actor` filter): a small cache of the user table.

Records keep the login name of who acted (reviews, gates, list versions); pages show "王科长（和平区医疗保障局）"
(issue #19). The user table holds a few hundred rows at most, so it is read whole and kept for a short while
rather than joined into every page's query.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine
from sqlmodel import Session, select

from models.people import person_label
from models.program import User

TTL_SECONDS = 30.0  # a renamed or added user shows within half a minute


class PersonNames:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._names: dict[str, str] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        with Session(self.engine) as session:
            return {u.name: person_label(u.name, display_name=u.display_name, unit=u.unit, role=u.role.value,
                                         districts=u.districts) for u in session.exec(select(User)).all()}

    def label(self, name: object) -> str:
        """The person's display name and unit; 系统 for the flows; an unknown name as it is."""
        text = "" if name is None else str(name)
        if text == "system":
            return person_label(text)
        with self._lock:
            if time.monotonic() - self._read_at > TTL_SECONDS or (text and text not in self._names
                                                                   and time.monotonic() - self._read_at > 1):
                self._names, self._read_at = self._load(), time.monotonic()
            return self._names.get(text, text)
