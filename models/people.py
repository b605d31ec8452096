"""How a person is named to another person: display name and unit, never a login name (issue #19)."""

from __future__ import annotations

from collections.abc import Sequence

from models.labels import ROLE_LABELS


def person_label(name: str, *, display_name: str | None = None, unit: str | None = None, role: str | None = None,
                 districts: Sequence[str] = ()) -> str:
    """'王科长（和平区医疗保障局）'; without a display name, the unit or the role and districts stand in.

    A login name such as "reviewer-辽中区" is a key for machines; letters and pages address a person by what
    the bureau calls them. The flows act as "system", read 系统.
    """
    if name == "system" or role == "system":
        return ROLE_LABELS["system"]
    where = unit or ("、".join(districts) + ("医疗保障局" if districts else "")) or None
    if display_name:
        return f"{display_name}（{where}）" if where and where not in display_name else display_name
    if where:
        role_word = ROLE_LABELS.get(role or "", "")
        return f"{where}{role_word}" if role_word and role != "program_manager" else where
    return ROLE_LABELS.get(role or "", "") or "工作人员"


def addressee(*, display_name: str | None, unit: str | None, districts: Sequence[str] = ()) -> str:
    """The salutation of a letter to a colleague: '和平区医疗保障局 王科长', the unit alone, or the name alone.

    A district reviewer without a unit is addressed as its districts' bureau ('辽中区医疗保障局'), never
    by its login name.
    """
    where = unit or ("、".join(districts) + "医疗保障局" if districts else "")
    if where and display_name and where not in display_name:
        return f"{where} {display_name}"
    return display_name or where or "同志"
