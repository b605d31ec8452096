"""Policy: a column checked at once (the importer's fast path) accepts, folds and warns exactly as its cells
checked one by one; when any cell would fail, it gives nothing, and the importer checks cell by cell, where every
bad cell is reported with its own reason."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from models.validators import (
    FieldError,
    check_uscc,
    check_usccs,
    make_uscc,
    org_code_check_char,
    validate_required_text,
    validate_required_texts,
)
from tests.factories_files import bad_check_char, uscc


def _texts_cell_by_cell(values: list[str], max_len: int) -> list[str] | None:
    out = []
    for value in values:
        try:
            out.append(validate_required_text(value, field="单位名称", max_len=max_len))
        except FieldError:
            return None
    return out


# What Chinese forms carry: ideographs, full-width brackets and digits, the ideographic and no-break spaces,
# combining marks, compatibility forms (ﬁ, Ⅻ, ㈱) and plain ASCII.
_CHARS = list("沈阳和平区诊所ABCabc ()（）１２３\u3000\u00a0\t\n\u0301\u309b\ufb01Ⅻ㈱-\x00")


@given(st.lists(st.text(alphabet=st.sampled_from(_CHARS), max_size=12), max_size=8), st.integers(1, 10))
@example(["沈阳（和平）诊所１"], 10)
@example(["\u3000沈阳\u00a0诊所\u3000"], 10)
@example(["诊所", "\u3000"], 10)  # one cell blank once folded
@example(["诊所", "ⅫⅫ"], 3)  # one cell too long once folded (Ⅻ is XII)
@example(["诊所", "配送\x00企业"], 10)  # a NUL, which PostgreSQL's text cannot hold
def test_a_column_of_required_texts_checked_at_once_gives_what_each_cell_gives(values, max_len):
    assert validate_required_texts(values, max_len) == _texts_cell_by_cell(values, max_len)


def _usccs_cell_by_cell(values: list[str]) -> list[tuple[str, list[str]]]:
    return [check_uscc(v) for v in values]


_ODD_ORG_CHECK = make_uscc("12210102" + "00000080" + ("0" if uscc(80)[16] != "0" else "1"))
_ABOLISHED_REGION = make_uscc("91110103" + "12345678" + org_code_check_char("12345678"))


def test_a_column_of_usccs_checked_at_once_gives_each_code_and_its_warnings_as_cell_by_cell():
    values = [uscc(1), _ODD_ORG_CHECK, uscc(2, district="沈河区"), _ABOLISHED_REGION, uscc(3)]
    at_once = check_usccs(values)
    assert at_once == _usccs_cell_by_cell(values)
    assert at_once is not None and [len(w) for _, w in at_once] == [0, 1, 0, 1, 0]


@pytest.mark.parametrize("other", [
    bad_check_char(uscc(5)),          # wrong check character: an error cell by cell
    "91999999MA0K7P3Q1X",             # unknown province
    uscc(6).lower(),                  # valid once folded: cell by cell folds it
    f" {uscc(7)}",                    # likewise, with a stray space
    "１２" + uscc(8)[2:],              # full-width digits
    "",                               # blank
    uscc(9)[:17],                     # too short
])
def test_a_column_of_usccs_with_any_code_not_as_printed_is_left_to_the_cell_by_cell_check(other):
    values = [uscc(1), other, uscc(2)]
    assert check_usccs(values) is None
    try:  # what the importer does then: each code checked (and folded, or reported) on its own
        _usccs_cell_by_cell(values)
    except FieldError as exc:
        assert exc.rule.startswith("uscc.")
