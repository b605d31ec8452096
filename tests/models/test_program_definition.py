"""Program-definition schema and the three seed region files.

The region files are data that bureau staff edit by hand, so these tests pin the seed values
(SPEC's phase table for Shenyang) and prove that a broken file reports every mistake at once.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.labels import PHASE_LABELS
from models.program_definition import (
    SHANGHAI,
    ApprovalLevel,
    PhaseName,
    ProgramDefinition,
    ProgramFileError,
    Window,
    load_program_file,
    program_content_hash,
    validate_program,
)

PROGRAMS = Path(__file__).resolve().parents[2] / "deploy" / "programs"
SHENYANG = PROGRAMS / "shenyang-2025.yaml"
NINGXIA = PROGRAMS / "ningxia-2025.yaml"
JIANGXI = PROGRAMS / "jiangxi-2025.yaml"


@pytest.fixture(scope="module")
def shenyang() -> ProgramDefinition:
    return load_program_file(SHENYANG)


@pytest.fixture(scope="module")
def ningxia() -> ProgramDefinition:
    return load_program_file(NINGXIA)


@pytest.fixture(scope="module")
def jiangxi() -> ProgramDefinition:
    return load_program_file(JIANGXI)


# --------------------------------------------------------------------------- the shipped files


@pytest.mark.parametrize("path", sorted(PROGRAMS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_program_file_loads(path: Path) -> None:
    defn = load_program_file(path)
    assert defn.slug == path.stem, "file name and slug must agree so operators find the file"
    assert defn.timezone == "Asia/Shanghai"
    assert defn.sources, "every file says which seeds its values came from"


def test_the_three_seed_programs_are_shipped() -> None:
    assert {p.name for p in PROGRAMS.glob("*.yaml")} >= {
        "shenyang-2025.yaml",
        "ningxia-2025.yaml",
        "jiangxi-2025.yaml",
    }


def test_shenyang_windows_match_the_seed_exactly(shenyang: ProgramDefinition) -> None:
    windows = {p.name: (p.window.opens, p.window.closes) for p in shenyang.phases}
    assert windows == {
        PhaseName.ALLIANCE: (date(2025, 8, 7), date(2025, 8, 15)),
        PhaseName.DRUG_LIST: (date(2025, 8, 10), date(2025, 9, 15)),
        PhaseName.ENROLLMENT: (date(2025, 9, 10), date(2025, 9, 30)),
        PhaseName.ACCOUNTS: (date(2025, 10, 1), date(2025, 11, 30)),
        PhaseName.CONTRACTS: (date(2025, 10, 1), date(2025, 11, 30)),
        PhaseName.CONTINUOUS_REVIEW: (date(2025, 12, 1), None),
    }
    assert all(p.enabled for p in shenyang.phases)


def test_shenyang_timeline_is_in_seed_order(shenyang: ProgramDefinition) -> None:
    assert [p.name for p in shenyang.timeline()] == list(PhaseName)


def test_shenyang_overlapping_phases_are_open_together(shenyang: ProgramDefinition) -> None:
    assert shenyang.open_phases_on(date(2025, 9, 12)) == [PhaseName.DRUG_LIST, PhaseName.ENROLLMENT]
    assert shenyang.open_phases_on(date(2025, 8, 12)) == [PhaseName.ALLIANCE, PhaseName.DRUG_LIST]
    assert shenyang.open_phases_on(date(2025, 8, 6)) == []
    assert shenyang.open_phases_on(date(2025, 10, 1)) == [PhaseName.ACCOUNTS, PhaseName.CONTRACTS]
    assert shenyang.open_phases_on(date(2030, 1, 1)) == [PhaseName.CONTINUOUS_REVIEW]


def test_shenyang_districts_alliance_and_chain(shenyang: ProgramDefinition) -> None:
    assert [(d.name, d.code) for d in shenyang.districts] == [
        ("和平区", "210102"),
        ("沈河区", "210103"),
        ("大东区", "210104"),
        ("皇姑区", "210105"),
        ("铁西区", "210106"),
        ("苏家屯区", "210111"),
        ("浑南区", "210112"),
        ("沈北新区", "210113"),
        ("于洪区", "210114"),
        ("辽中区", "210115"),
        ("康平县", "210123"),
        ("法库县", "210124"),
        ("新民市", "210181"),
    ]
    assert shenyang.alliance is not None
    others = ["大连", "鞍山", "抚顺", "本溪", "丹东", "锦州", "营口"]
    others += ["阜新", "辽阳", "盘锦", "铁岭", "朝阳", "葫芦岛"]
    assert [i.city for i in shenyang.alliance.invitees] == [f"{c}市" for c in others]
    assert shenyang.alliance.lead_city == "沈阳市"
    assert [(a.level, a.role, a.scope) for a in shenyang.approval_chain] == [
        ("district", "district_reviewer", "application"),
        ("city", "program_manager", "batch"),
    ]
    rules = shenyang.rules
    assert rules.delivery_sla_hours == 72
    assert rules.overdue_interview_after_months == 2
    assert rules.special_drugs_need_designation is True
    assert rules.agreed_volume_share_by_winners == {1: Decimal("0.5"), 2: Decimal("0.6"), 3: Decimal("0.7")}
    assert rules.price_report_working_days == 20
    assert rules.bad_record_ban_years == 2


def test_ningxia_profile(ningxia: ProgramDefinition) -> None:
    assert ningxia.alliance is None
    assert ningxia.phase(PhaseName.ALLIANCE) is None
    assert {d.city for d in ningxia.districts} == {"银川市", "石嘴山市", "吴忠市", "固原市", "中卫市"}
    assert len(ningxia.districts) == 22
    assert all(d.code.startswith(("6401", "6402", "6403", "6404", "6405")) for d in ningxia.districts)
    assert [(a.level, a.scope) for a in ningxia.approval_chain] == [
        ("district", "application"),
        ("city", "application"),
    ]
    assert ningxia.rules.min_drug_count.use_committed_count is True
    assert ningxia.rules.quarterly_report_due == "first_month_of_quarter"
    drug_list = ningxia.phase("drug_list")
    assert drug_list is not None
    assert (drug_list.window.opens, drug_list.window.closes) == (date(2025, 12, 1), date(2025, 12, 31))
    review = ningxia.phase(PhaseName.CONTINUOUS_REVIEW)
    assert review is not None
    assert review.window.closes == date(2026, 12, 31)  # the seed's summary deadline


def test_jiangxi_profile(jiangxi: ProgramDefinition) -> None:
    rules = jiangxi.rules
    assert [(t.by, t.share) for t in rules.coverage_targets] == [
        (date(2025, 12, 31), Decimal("0.80")),
        (date(2026, 12, 31), Decimal("0.90")),
    ]
    mdc = rules.min_drug_count
    assert (mdc.private_tertiary, mdc.private_other, mdc.pharmacy) == (80, 50, 50)
    assert rules.recommended_share_min == Decimal("0.60")
    assert rules.has_recommended_list is True
    assert rules.markup.pharmacy_max == 0
    assert rules.markup.pharmacy_max_with_index == Decimal("0.15")
    assert rules.online_price_equals_offline is True
    assert rules.enterprise_admission == "rolling"
    assert [d.code for d in jiangxi.districts] == [f"36{n:02d}00" for n in range(1, 12)]
    assert jiangxi.districts[0].name == "南昌市"
    assert jiangxi.districts[-1].name == "上饶市"


def _gbt2260_current_names() -> dict[str, str] | None:
    """Current names by code from python-stdnum's copy of GB/T 2260, if that package is installed."""
    spec = importlib.util.find_spec("stdnum")
    if spec is None or not spec.submodule_search_locations:
        return None
    loc = Path(next(iter(spec.submodule_search_locations))) / "cn" / "loc.dat"
    if not loc.exists():
        return None
    names: dict[str, str] = {}
    province = ""
    for line in loc.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'^(\d{2}) province="', line)
        if m:
            province = m.group(1)
            continue
        m = re.match(r'^\s+(\d{4}) county="(.*)"$', line)
        if not m:
            continue
        last = m.group(2).split(",")[-1]
        period = re.match(r"^\[(\d*)-(\d*)\](.*)$", last)
        if period and period.group(2):
            continue  # abolished
        names[province + m.group(1)] = period.group(3) if period else last
    return names


@pytest.mark.parametrize("path", [SHENYANG, NINGXIA, JIANGXI], ids=lambda p: p.name)
def test_district_codes_agree_with_a_gbt2260_table(path: Path) -> None:
    table = _gbt2260_current_names()
    if table is None:
        pytest.skip("python-stdnum's GB/T 2260 table is not installed")
    defn = load_program_file(path)
    assert {(d.code, d.name) for d in defn.districts} <= set(table.items())
    for d in defn.districts:
        if d.city is not None:
            assert table[d.code[:4] + "00"] == d.city


def test_phase_labels_cover_every_phase(shenyang: ProgramDefinition) -> None:
    assert set(PHASE_LABELS) == set(PhaseName)
    assert [p.value for p in PhaseName] == [
        "alliance",
        "drug_list",
        "enrollment",
        "accounts",
        "contracts",
        "continuous_review",
    ]
    enrollment = shenyang.phase(PhaseName.ENROLLMENT)
    assert enrollment is not None
    assert enrollment.display_label == PHASE_LABELS[PhaseName.ENROLLMENT]


# --------------------------------------------------------------------------- windows


def test_window_edges_are_closed_dates(shenyang: ProgramDefinition) -> None:
    enrollment = shenyang.phase(PhaseName.ENROLLMENT)
    assert enrollment is not None
    w = enrollment.window
    assert (w.state_on(date(2025, 9, 9)), w.contains(date(2025, 9, 9))) == ("not_yet_open", False)
    assert (w.state_on(date(2025, 9, 10)), w.contains(date(2025, 9, 10))) == ("open", True)
    assert (w.state_on(date(2025, 9, 30)), w.contains(date(2025, 9, 30))) == ("open", True)
    assert (w.state_on(date(2025, 10, 1)), w.contains(date(2025, 10, 1))) == ("closed", False)


def test_window_instants_are_judged_in_shanghai_time() -> None:
    w = Window(opens=date(2025, 9, 10), closes=date(2025, 9, 30))
    assert w.opens_at() == datetime(2025, 9, 10, tzinfo=SHANGHAI)
    assert w.closes_at() == datetime(2025, 9, 30, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    assert w.contains(datetime(2025, 9, 30, 23, 59, 59, 999999, tzinfo=SHANGHAI))
    # 16:00 UTC on the closing day is already 00:00 the next day in Shenyang.
    assert w.state_on(datetime(2025, 9, 30, 16, 0, tzinfo=UTC)) == "closed"
    assert w.state_on(datetime(2025, 9, 9, 16, 0, tzinfo=UTC)) == "open"
    with pytest.raises(TypeError):
        w.contains(datetime(2025, 9, 10, 12, 0))


def test_open_ended_window_never_closes() -> None:
    w = Window(opens=date(2025, 12, 1))
    assert w.closes_at() is None
    assert w.state_on(date(2099, 12, 31)) == "open"
    assert w.state_on(date(2025, 11, 30)) == "not_yet_open"


def test_window_rejects_closes_before_opens_but_allows_one_day() -> None:
    assert Window(opens=date(2025, 9, 10), closes=date(2025, 9, 10)).contains(date(2025, 9, 10))
    with pytest.raises(ValidationError):
        Window(opens=date(2025, 9, 10), closes=date(2025, 9, 9))


# --------------------------------------------------------------------------- errors

_VALID = textwrap.dedent(
    """\
    slug: test-2025
    name: 测试市集采药品“三进”工作
    region: 辽宁省沈阳市
    region_code: "210100"
    year_label: "2025"
    timezone: Asia/Shanghai
    calendar_unknown_year: strict
    phases:
      - name: drug_list
        window: {opens: 2025-08-10, closes: 2025-09-15}
      - name: enrollment
        window: {opens: 2025-09-10, closes: 2025-09-30}
    districts:
      - {name: 和平区, code: "210102"}
      - {name: 沈河区, code: 210103}
    approval_chain:
      - {level: district, role: district_reviewer, label: 区审核, scope: application, due_working_days: 3}
      - {level: city, role: program_manager, label: 市确认, scope: batch, due_working_days: 3}
    batching: {cutoff_every_days: 14}
    gates: {declaration_review_working_days: 5, list_approval_working_days: 3}
    rules:
      delivery_sla_hours: 72
    sources: [000_c11bba317d9f68b5.txt]
    """
)


def _write(tmp_path: Path, text: str, name: str = "prog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_loads_with_documented_defaults(tmp_path: Path) -> None:
    defn = load_program_file(_write(tmp_path, _VALID))
    assert defn.districts[1].code == "210103"  # unquoted YAML numbers are accepted
    assert defn.rules.min_participation_years == 1
    assert defn.rules.payment_due_roll_forward_to_working_day is False
    assert defn.alliance is None


def test_broken_file_reports_every_error_with_its_path(tmp_path: Path) -> None:
    broken = textwrap.dedent(
        """\
        slug: Test_2025                   # bad slug
        name: 测试
        region: 辽宁省沈阳市
        region_code: "210100"
        year_label: "2025"
        timezone: Asia/Shanghai
        calendar_unknown_year: strict
        phases:
          - name: alliance                # enabled, but no alliance section below
            window: {opens: 2025-08-07, closes: 2025-08-15}
          - name: drug_lists              # unknown phase name
            window: {opens: 2025-08-10, closes: 2025-09-15}
          - name: enrollment
            window: {opens: 2025-09-10, closes: 2025-09-01}   # closes before opens
        districts:
          - {name: 和平区, code: "210102"}
          - {name: 沈河区, code: "210103"}
          - {name: 和平区, code: "210104"}                    # duplicate district
        approval_chain:
          - {level: district, role: district_reviewer, label: 区审核, scope: application, due_working_days: 3}
        batching: {cutoff_every_days: 14}
        gates: {declaration_review_working_days: 5, list_approval_working_days: 3}
        rules:
          delivery_sla_hours: 72
          delivery_sla_hour: 48           # unknown key (typo)
        sources: [000_c11bba317d9f68b5.txt]
        """
    )
    path = _write(tmp_path, broken, "broken.yaml")
    with pytest.raises(ProgramFileError) as info:
        load_program_file(path)
    errors = dict(info.value.errors)
    assert set(errors) == {
        "slug",
        "alliance",
        "phases[1].name",
        "phases[2].window.closes",
        "districts[2].name",
        "rules.delivery_sla_hour",
    }
    assert "slug" in errors["slug"]
    assert "alliance" in errors["alliance"]
    assert "drug_list" in errors["phases[1].name"]  # the message lists the allowed names
    assert "before opens" in errors["phases[2].window.closes"]
    assert "twice" in errors["districts[2].name"]
    assert "Extra inputs" in errors["rules.delivery_sla_hour"]

    text = str(info.value)
    lines = text.splitlines()
    assert len(lines) == 1 + 6
    assert all("broken.yaml" in line for line in lines)
    for path_str in errors:
        assert f": {path_str}: " in text


def test_program_level_errors_are_located_when_fields_are_valid(tmp_path: Path) -> None:
    text = _VALID.replace(
        'districts:\n  - {name: 和平区, code: "210102"}',
        'districts:\n  - {name: 和平区, code: "210102"}\n  - {name: 和平区, code: "640104"}',
    ).replace("  - name: enrollment\n", "  - name: drug_list\n")
    with pytest.raises(ProgramFileError) as info:
        load_program_file(_write(tmp_path, text))
    assert dict(info.value.errors).keys() == {"phases[1].name", "districts[1].name", "districts[1].code"}


def test_alliance_section_without_alliance_phase_is_an_error(tmp_path: Path) -> None:
    text = _VALID + textwrap.dedent(
        """\
        alliance:
          lead_city: 沈阳市
          response_due_working_days: 5
          invitees: [{city: 大连市, bureau: 大连市医疗保障局, email: not-an-email}]
        """
    )
    with pytest.raises(ProgramFileError) as info:
        load_program_file(_write(tmp_path, text))
    assert dict(info.value.errors).keys() == {"alliance", "alliance.invitees[0].email"}


def test_approval_chain_order_is_checked(tmp_path: Path) -> None:
    text = _VALID.replace(
        "  - {level: district, role: district_reviewer, label: 区审核, scope: application, due_working_days: 3}\n"
        "  - {level: city, role: program_manager, label: 市确认, scope: batch, due_working_days: 3}\n",
        "  - {level: city, role: program_manager, label: 市确认, scope: batch, due_working_days: 3}\n"
        "  - {level: district, role: program_manager, label: 区审核, scope: batch, due_working_days: 3}\n",
    )
    with pytest.raises(ProgramFileError) as info:
        load_program_file(_write(tmp_path, text))
    assert dict(info.value.errors).keys() == {
        "approval_chain[1].level",
        "approval_chain[1].role",
        "approval_chain[1].scope",
    }
    with pytest.raises(ValidationError):
        ApprovalLevel.model_validate({"level": "county", "role": "x", "label": "", "scope": "batch"})


def test_empty_approval_chain_and_batching_without_trigger(tmp_path: Path) -> None:
    text = re.sub(r"approval_chain:\n(  - .*\n)+", "approval_chain: []\n", _VALID).replace(
        "batching: {cutoff_every_days: 14}", "batching: {first_cutoff: 2025-09-19}"
    )
    with pytest.raises(ProgramFileError) as info:
        load_program_file(_write(tmp_path, text))
    assert dict(info.value.errors).keys() == {"approval_chain", "batching"}


def test_yaml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    text = "slug: test-2025\nphases:\n  - name: alliance\n   window: {opens: 2025-08-07\n"
    with pytest.raises(ProgramFileError) as info:
        load_program_file(_write(tmp_path, text, "syntax.yaml"))
    ((path, msg),) = info.value.errors
    assert path == ""
    assert re.search(r"line 4\b", msg), msg
    assert "syntax.yaml" in str(info.value)


def test_duplicate_yaml_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    text = _VALID.replace('year_label: "2025"\n', 'year_label: "2025"\nyear_label: "2026"\n')
    with pytest.raises(ProgramFileError) as info:
        load_program_file(_write(tmp_path, text))
    ((_, msg),) = info.value.errors
    assert "duplicate key 'year_label'" in msg
    assert "line 6" in msg


@pytest.mark.parametrize("text", ["", "- just\n- a list\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ProgramFileError, match="expected a mapping"):
        load_program_file(_write(tmp_path, text))


def test_missing_file_is_a_program_file_error(tmp_path: Path) -> None:
    with pytest.raises(ProgramFileError, match="cannot read"):
        load_program_file(tmp_path / "nope.yaml")


def test_validate_program_reports_like_the_loader() -> None:
    with pytest.raises(ProgramFileError) as info:
        validate_program({"slug": "x"}, source="db-row-7")
    paths = {p for p, _ in info.value.errors}
    assert {"name", "phases", "districts", "rules"} <= paths
    assert str(info.value).startswith("db-row-7:")


# --------------------------------------------------------------------------- content hash


def test_content_hash_is_stable_and_tracks_values(tmp_path: Path) -> None:
    first = program_content_hash(load_program_file(SHENYANG))
    assert first == program_content_hash(load_program_file(SHENYANG))
    assert re.fullmatch(r"[0-9a-f]{64}", first)

    original = SHENYANG.read_text(encoding="utf-8")
    # Comments and spelling of equal values do not change the meaning, so not the hash either.
    cosmetic = original.replace("# 实施步骤", "# edited comment\n# 实施步骤").replace(
        "{1: 0.5, 2: 0.6, 3: 0.7}", "{1: 0.50, 2: 0.60, 3: 0.70}"
    )
    assert program_content_hash(load_program_file(_write(tmp_path, cosmetic, "a.yaml"))) == first

    changed = original.replace("delivery_sla_hours: 72", "delivery_sla_hours: 48")
    assert changed != original
    assert program_content_hash(load_program_file(_write(tmp_path, changed, "b.yaml"))) != first

    moved = original.replace("closes: 2025-09-30}", "closes: 2025-10-08}")
    assert program_content_hash(load_program_file(_write(tmp_path, moved, "c.yaml"))) != first


def test_region_hashes_differ(
    shenyang: ProgramDefinition, ningxia: ProgramDefinition, jiangxi: ProgramDefinition
) -> None:
    hashes = {program_content_hash(d) for d in (shenyang, ningxia, jiangxi)}
    assert len(hashes) == 3


def test_a_definition_stored_before_the_provisional_calendar_keeps_loading() -> None:
    from models.program_definition import ProgramDefinition

    data = load_program_file(SHENYANG).model_dump(mode="json")
    for old, new in (("fail", "strict"), ("warn", "provisional")):
        assert ProgramDefinition.model_validate({**data, "calendar_unknown_year": old}).calendar_unknown_year == new


def test_price_alert_bands_must_rise_from_blue_to_red() -> None:
    import pytest
    from pydantic import ValidationError

    from models.program_definition import PriceAlertBands

    assert PriceAlertBands().red == Decimal("0.30")
    with pytest.raises(ValidationError):
        PriceAlertBands(blue=Decimal("0.2"), yellow=Decimal("0.1"), red=Decimal("0.3"))
