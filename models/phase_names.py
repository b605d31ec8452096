"""The names of a program's phases, on their own: the CLI's `--phase` choices need them at start-up.

`models.program_definition` (pydantic and the whole schema, ~0.3 s to import) re-exports this enum;
the CLI imports it from here so `sanjin --help` does not load the program-file schema.
"""

from __future__ import annotations

from enum import StrEnum


class PhaseName(StrEnum):
    """The six phases of SPEC's phase table; a program enables the ones it runs."""

    ALLIANCE = "alliance"
    DRUG_LIST = "drug_list"
    ENROLLMENT = "enrollment"
    ACCOUNTS = "accounts"
    CONTRACTS = "contracts"
    CONTINUOUS_REVIEW = "continuous_review"
