"""Who a program's letters come from: the issuing office, the 文号 pattern, the contact person and phone.

Issue #19: the invitation 函 had no 文号 and no one to call, and a rejection named a generic 区（县）医保局.
A 函 of a government office carries its 发文字号 (《党政机关公文格式》GB/T 9704-2012 §7.2.4: 机关代字、年份、
发文顺序号, the year in 〔〕) and, at its end, the contact person and phone (§7.3.5 附注 / 联系人及电话).
"""

from __future__ import annotations

from datetime import date

from pydantic import field_validator

from models.program_definition.base import NonEmptyStr, _Strict
from models.validators import FieldError, validate_phone


class Issuer(_Strict):
    """The office that signs the program's letters (落款) and the person who answers questions about them."""

    office: NonEmptyStr  # 沈阳市医疗保障局
    # GB/T 9704 §7.2.4: 机关代字〔年份〕序号号; {year} and {number} are filled per letter (the notice's number).
    document_number: NonEmptyStr  # 沈医保函〔{year}〕{number}号
    contact: NonEmptyStr  # 联系人
    phone: NonEmptyStr  # 联系电话, checked as the validators check any phone

    @field_validator("document_number")
    @classmethod
    def _pattern(cls, v: str) -> str:
        if "{year}" not in v or "{number}" not in v:
            raise ValueError("document_number needs {year} and {number}, e.g. 沈医保函〔{year}〕{number}号")
        try:
            v.format(year=2025, number=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"document_number may hold only {{year}} and {{number}}: {exc}") from exc
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        try:
            return validate_phone(v, "phone")
        except FieldError as exc:
            raise ValueError(str(exc)) from exc

    def document_number_for(self, day: date, number: int) -> str:
        """The 文号 of one letter: its year and its number in the outbox (unique, never reused)."""
        return self.document_number.format(year=day.year, number=number)
