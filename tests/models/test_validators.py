"""Policy tests for form validators: what a bureau accepts and why the rest is turned away."""

import pickle
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from models.validators import (
    USCC_CHARS,
    FieldError,
    drug_code_is_full,
    institution_code_is_pharmacy,
    make_uscc,
    org_code_check_char,
    region_name,
    uscc_check_char,
    uscc_warnings,
    validate_approval_number,
    validate_district,
    validate_drug_code,
    validate_drug_standard_code,
    validate_email,
    validate_insurance_institution_code,
    validate_phone,
    validate_price,
    validate_required_text,
    validate_uscc,
)

# Written out from GB 32100-2015 independently of the module, so a shared bug cannot hide.
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def reference_uscc(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return first17 + USCC_CHARS[(31 - total % 31) % 31]


SPEC_EXAMPLES = ["91350100M000100Y43", "91110108551385082Q", "91110000600037341L", "91440300MA5DLQQW0F"]
SEED_REGIONS = {
    "210102": "和平区",
    "210103": "沈河区",
    "210112": "浑南区",
    "210113": "沈北新区",
    "210181": "新民市",
    "640104": "兴庆区",
    "640205": "惠农区",
    "640302": "利通区",
    "640402": "原州区",
    "640502": "沙坡头区",
    "360102": "东湖区",
    "360702": "章贡区",
}


def expect_rule(rule: str, func, *args):
    with pytest.raises(FieldError) as info:
        func(*args)
    assert info.value.rule == rule, str(info.value)
    return info.value


# ---------------------------------------------------------------- 统一社会信用代码


@pytest.mark.parametrize("code", SPEC_EXAMPLES)
def test_spec_example_usccs_are_accepted(code):
    assert validate_uscc(code) == code


def test_national_level_uscc_with_region_100000_is_accepted():
    assert validate_uscc("12100000425006117P") == "12100000425006117P"


@pytest.mark.parametrize("region", sorted(SEED_REGIONS))
@pytest.mark.parametrize("kind", ["91", "92", "93", "52", "51", "53", "12", "11", "Y1", "N2", "A1"])
def test_uscc_built_with_the_check_algorithm_is_accepted_for_seed_regions(region, kind):
    code = reference_uscc(f"{kind}{region}MA0K7P3Q1")
    assert make_uscc(code[:17]) == code
    assert validate_uscc(code) == code


@pytest.mark.parametrize("region, name", sorted(SEED_REGIONS.items()))
def test_seed_region_codes_are_named_from_the_gbt2260_table(region, name):
    assert region_name(region) == name


def test_unknown_region_codes_have_no_name():
    assert region_name("219999") is None
    assert region_name("99999") is None


def test_uscc_is_normalized_by_stripping_and_upper_casing():
    assert validate_uscc("  91440300ma5dlqqw0f\n") == "91440300MA5DLQQW0F"


def test_full_width_uscc_typed_with_a_chinese_ime_is_accepted():
    assert validate_uscc("９１１１０１０８５５１３８５０８２Ｑ") == "91110108551385082Q"


def test_uscc_with_wrong_check_character_is_rejected():
    error = expect_rule("uscc.check_char", validate_uscc, "91350100M000100Y4X")
    assert error.field == "统一社会信用代码"
    assert error.value == "91350100M000100Y4X"
    assert error.message == (
        "统一社会信用代码校验位错误 / USCC check character is wrong: expected '3', got 'X'"
    )
    assert "统一社会信用代码" in str(error)
    assert "91350100M000100Y4X" in str(error)
    assert "uscc.check_char" in str(error)


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "uscc.empty"),
        ("   ", "uscc.empty"),
        ("91350100M000100Y4", "uscc.length"),
        ("91350100M000100Y433", "uscc.length"),
        ("91350100M000100I43", "uscc.charset"),
        ("91350100M000100O43", "uscc.charset"),
        ("91350100M000100S43", "uscc.charset"),
        ("91350100M000100V43", "uscc.charset"),
        ("91350100M000100Z43", "uscc.charset"),
        ("91350100M000 00Y43", "uscc.charset"),
        ("01350100M000100Y43", "uscc.authority"),
        ("B1350100M000100Y43", "uscc.authority"),
        ("9135A100M000100Y43", "uscc.region_format"),
    ],
)
def test_malformed_uscc_is_rejected_with_a_specific_rule(value, rule):
    expect_rule(rule, validate_uscc, value)


def test_uscc_with_a_region_unknown_in_a_valid_province_is_rejected():
    error = expect_rule("uscc.region", validate_uscc, reference_uscc("91219999MA0K7P3Q1"))
    assert "辽宁省" in error.message


def test_uscc_with_an_unknown_province_is_rejected():
    error = expect_rule("uscc.region", validate_uscc, reference_uscc("91999999MA0K7P3Q1"))
    assert "unknown province" in error.message


def test_uscc_with_an_abolished_region_is_accepted_with_a_warning():
    code = reference_uscc("91110103" + "12345678" + org_code_check_char("12345678"))
    assert validate_uscc(code) == code
    assert [w for w in uscc_warnings(code) if "110103" in w and "崇文区" in w]


def test_uscc_with_bad_organisation_code_check_is_accepted_with_a_warning():
    body = "MA0K7P3Q"
    good = org_code_check_char(body)
    bad = "1" if good != "1" else "2"
    code = reference_uscc(f"91210102{body}{bad}")
    assert validate_uscc(code) == code
    (warning,) = uscc_warnings(code)
    assert f"should be {good!r}" in warning


@pytest.mark.parametrize("code", SPEC_EXAMPLES)
def test_spec_example_usccs_pass_the_organisation_code_check(code):
    assert uscc_warnings(code) == []


def test_uscc_warnings_refuse_an_invalid_code():
    expect_rule("uscc.check_char", uscc_warnings, "91350100M000100Y4X")


def test_custom_field_label_is_used_in_the_error():
    error = expect_rule("uscc.length", validate_uscc, "123", "申请单位代码")
    assert error.field == "申请单位代码"
    assert error.message.startswith("申请单位代码")


def test_make_uscc_refuses_a_prefix_with_forbidden_characters():
    expect_rule("uscc.prefix", make_uscc, "91210102MA0K7P3QI")
    expect_rule("uscc.prefix", uscc_check_char, "91210102")


def test_field_error_survives_pickling_for_prefect_task_results():
    error = expect_rule("uscc.length", validate_uscc, "123")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.value, copy.rule, copy.message) == (
        error.field,
        error.value,
        error.rule,
        error.message,
    )
    assert isinstance(copy, ValueError)


valid_prefixes = st.builds(
    lambda authority, kind, region, body: f"{authority}{kind}{region}{body}",
    st.sampled_from("123456789ANY"),
    st.sampled_from(USCC_CHARS),
    st.sampled_from([*SEED_REGIONS, "100000", "110108", "350100", "440300"]),
    st.text(alphabet=USCC_CHARS, min_size=9, max_size=9),
)


@given(valid_prefixes)
def test_any_prefix_with_a_valid_region_completed_by_make_uscc_is_valid(prefix):
    code = make_uscc(prefix)
    assert code == reference_uscc(prefix)
    assert validate_uscc(code) == code


@given(valid_prefixes, st.integers(min_value=0, max_value=17), st.sampled_from(USCC_CHARS))
def test_changing_any_one_character_of_a_valid_uscc_makes_it_invalid(prefix, position, replacement):
    code = make_uscc(prefix)
    if code[position] == replacement:
        replacement = USCC_CHARS[(USCC_CHARS.index(replacement) + 1) % len(USCC_CHARS)]
    with pytest.raises(FieldError):
        validate_uscc(code[:position] + replacement + code[position + 1 :])


# ---------------------------------------------------------------- 机构医保编码


@pytest.mark.parametrize(
    "value, expected, pharmacy",
    [
        ("H31010600037", "H31010600037", False),
        ("P31010100003", "P31010100003", True),
        (" p21010200001 ", "P21010200001", True),
        ("H64990000012", "H64990000012", False),
        ("P66010000001", "P66010000001", True),
    ],
)
def test_insurance_institution_codes_accept_insurance_only_regions(value, expected, pharmacy):
    assert validate_insurance_institution_code(value) == expected
    assert institution_code_is_pharmacy(value) is pharmacy


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "institution_code.empty"),
        ("X31010600037", "institution_code.format"),
        ("H3101060003", "institution_code.format"),
        ("H310106000370", "institution_code.format"),
        ("H3101060003A", "institution_code.format"),
        ("H99010600037", "institution_code.province"),
        ("P81000000001", "institution_code.province"),
    ],
)
def test_malformed_insurance_institution_code_is_rejected(value, rule):
    expect_rule(rule, validate_insurance_institution_code, value)


# ---------------------------------------------------------------- drug identifiers


@pytest.mark.parametrize(
    "value, expected, full",
    [
        ("XA01ABD075A002010100483", "XA01ABD075A002010100483", True),
        ("xa01abd075a002010100483", "XA01ABD075A002010100483", True),
        ("ZA04BAA0156010104339", "ZA04BAA0156010104339", True),
        ("XA01ABD075", "XA01ABD075", False),
        ("ZA04BA", "ZA04BA", False),
    ],
)
def test_drug_codes_accept_product_and_variety_level_codes(value, expected, full):
    assert validate_drug_code(value) == expected
    assert drug_code_is_full(value) is full


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "drug_code.empty"),
        ("A01ABD075A002010100483", "drug_code.prefix"),
        ("XA01 ABD075A002010100483", "drug_code.charset"),
        ("XA01阿莫西林", "drug_code.charset"),
        ("XA01-ABD075", "drug_code.charset"),
        ("XA01A", "drug_code.length"),
        ("XA01ABD075A0020101004831", "drug_code.length"),
        ("ZA04BAA01560101043391", "drug_code.length"),
    ],
)
def test_malformed_drug_code_is_rejected(value, rule):
    expect_rule(rule, validate_drug_code, value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("国药准字H20003263", "国药准字H20003263"),
        ("国药准字Z44020211", "国药准字Z44020211"),
        ("国药准字S10820001", "国药准字S10820001"),
        ("国药准字H19990372", "国药准字H19990372"),
        ("国药准字HJ20150001", "国药准字HJ20150001"),
        ("国药准字ZC20200002", "国药准字ZC20200002"),
        ("国药准字SJ20180010", "国药准字SJ20180010"),
        ("国药准字J20150001", "国药准字J20150001"),
        ("国药准字B20020001", "国药准字B20020001"),
        ("国药准字T20030005", "国药准字T20030005"),
        ("国药准字F20050001", "国药准字F20050001"),
        (" 国药准字 h20003263 ", "国药准字H20003263"),
    ],
)
def test_approval_numbers_in_current_and_older_forms_are_accepted(value, expected):
    assert validate_approval_number(value) == expected


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "approval.empty"),
        ("H20003263", "approval.prefix"),
        ("国药准子H20003263", "approval.prefix"),
        ("国药准字X20003263", "approval.format"),
        ("国药准字JJ20003263", "approval.format"),
        ("国药准字H2000326", "approval.format"),
        ("国药准字H200032631", "approval.format"),
        ("国药准字H99990001", "approval.source"),
        ("国药准字H00000001", "approval.source"),
    ],
)
def test_malformed_approval_number_is_rejected(value, rule):
    expect_rule(rule, validate_approval_number, value)


def test_drug_standard_code_with_valid_gs1_check_is_accepted():
    assert validate_drug_standard_code(" 86900483000019 ") == "86900483000019"
    assert validate_drug_standard_code(86900483000019) == "86900483000019"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "standard_code.empty"),
        ("8690048300001", "standard_code.format"),
        ("8690048300001X", "standard_code.format"),
        ("12345678901231", "standard_code.prefix"),
        ("86900483000018", "standard_code.check_digit"),
        ("86904083000019", "standard_code.check_digit"),  # 0-4 swapped (GS1 misses swaps differing by 5)
    ],
)
def test_malformed_drug_standard_code_is_rejected(value, rule):
    expect_rule(rule, validate_drug_standard_code, value)


# ---------------------------------------------------------------- prices


@pytest.mark.parametrize(
    "value, expected",
    [
        ("12.5", Decimal("12.50")),
        (" 12.50 ", Decimal("12.50")),
        ("0.01", Decimal("0.01")),
        ("12.500", Decimal("12.50")),
        ("１２.５", Decimal("12.50")),
        (7, Decimal("7.00")),
        (Decimal("3.14"), Decimal("3.14")),
        (12.5, Decimal("12.50")),
        (3.1400000000000001, Decimal("3.14")),
        (0.1 + 0.2, Decimal("0.30")),
        (123456789.12, Decimal("123456789.12")),
    ],
)
def test_prices_are_returned_as_yuan_quantized_to_fen(value, expected):
    result = validate_price(value)
    assert result == expected
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value, rule",
    [
        ("12,5", "price.comma_decimal"),
        ("1,234.50", "price.separator"),
        ("¥12", "price.currency"),
        ("￥12", "price.currency"),
        ("12元", "price.currency"),
        ("RMB 12", "price.currency"),
        ("-1", "price.negative"),
        (-0.5, "price.negative"),
        ("0", "price.zero"),
        (0, "price.zero"),
        ("0.00", "price.zero"),
        ("abc", "price.not_number"),
        ("1e3", "price.not_number"),
        ("nan", "price.not_finite"),
        (float("nan"), "price.not_finite"),
        (float("inf"), "price.not_finite"),
        (Decimal("Infinity"), "price.not_finite"),
        ("1.234", "price.too_many_decimals"),
        (1.234, "price.too_many_decimals"),
        (Decimal("1.234"), "price.too_many_decimals"),
        ("", "price.empty"),
        ("  ", "price.empty"),
        (None, "price.empty"),
        (True, "price.type"),
        ("1000000000000", "price.too_large"),
    ],
)
def test_invalid_price_is_rejected_with_its_own_rule(value, rule):
    expect_rule(rule, validate_price, value)


def test_price_rejections_have_distinct_messages():
    messages = {
        expect_rule(rule, validate_price, value).message
        for value, rule in [
            ("12,5", "price.comma_decimal"),
            ("¥12", "price.currency"),
            ("-1", "price.negative"),
            ("0", "price.zero"),
            ("abc", "price.not_number"),
            ("nan", "price.not_finite"),
            ("1.234", "price.too_many_decimals"),
            ("", "price.empty"),
        ]
    }
    assert len(messages) == 8


@given(st.integers(min_value=1, max_value=10**11))
def test_any_whole_fen_amount_from_excel_float_round_trips(cents):
    assert validate_price(cents / 100) == Decimal(cents).scaleb(-2)


# ---------------------------------------------------------------- phones and e-mail


@pytest.mark.parametrize(
    "value, expected",
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("86-13812345678", "13812345678"),
        ("0086 19912345678", "19912345678"),
        ("024-23456789", "024-23456789"),
        ("02423456789", "024-23456789"),
        ("(024)23456789", "024-23456789"),
        ("（024）23456789", "024-23456789"),
        ("+86 24 2345 6789", "024-23456789"),
        ("010-6552-9999", "010-65529999"),
        ("0951-5012345", "0951-5012345"),
        ("0791-86123456", "0791-86123456"),
        ("024-23456789-123", "024-23456789-123"),
        ("024-23456789转8001", "024-23456789-8001"),
        ("400-123-4567", "400-123-4567"),
        ("8001234567", "800-123-4567"),
        ("12345", "12345"),
        ("12393", "12393"),
    ],
)
def test_phone_numbers_are_normalized_to_one_display_form(value, expected):
    assert validate_phone(value) == expected


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "phone.empty"),
        ("23456789", "phone.no_area_code"),
        ("12345678901", "phone.format"),
        ("1381234567", "phone.format"),
        ("138123456789", "phone.format"),
        ("024-234567", "phone.format"),
        ("024-23456789-1234567", "phone.format"),
        ("1239", "phone.format"),
        ("call me", "phone.format"),
    ],
)
def test_invalid_phone_is_rejected(value, rule):
    expect_rule(rule, validate_phone, value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("ybj@example.com", "ybj@example.com"),
        (" Zhang.San@Example.COM ", "Zhang.San@example.com"),
        ("a+notice@mail.sy.gov.cn", "a+notice@mail.sy.gov.cn"),
        ("ybj@医保.中国", "ybj@医保.中国"),
        ("ybj＠qq.com", "ybj@qq.com"),
    ],
)
def test_practical_email_addresses_are_accepted_with_lower_case_domain(value, expected):
    assert validate_email(value) == expected


@pytest.mark.parametrize(
    "value, rule",
    [
        ("", "email.empty"),
        ("ybj @example.com", "email.whitespace"),
        ("ybj.example.com", "email.at"),
        ("a@b@example.com", "email.at"),
        ("@example.com", "email.local"),
        (".ybj@example.com", "email.local"),
        ("yb..j@example.com", "email.local"),
        ("张三@example.com", "email.local"),
        ("ybj@example", "email.domain"),
        ("ybj@example..com", "email.domain"),
        ("ybj@-example.com", "email.domain"),
        ("ybj@exa_mple.com", "email.domain"),
        ("ybj@example.123", "email.domain"),
        ("ybj@", "email.domain"),
    ],
)
def test_invalid_email_is_rejected(value, rule):
    expect_rule(rule, validate_email, value)


# ---------------------------------------------------------------- districts

SHENYANG = [
    *("和平区", "沈河区", "大东区", "皇姑区", "铁西区", "苏家屯区", "浑南区"),
    *("沈北新区", "于洪区", "辽中区", "康平县", "法库县", "新民市"),
]


def test_district_in_the_program_list_is_accepted():
    assert validate_district(" 浑南区 ", SHENYANG) == "浑南区"


def test_district_outside_the_program_list_is_rejected_listing_allowed_values():
    error = expect_rule("district.unknown", validate_district, "和平", SHENYANG)
    assert "和平区、沈河区" in error.message
    assert "新民市" in error.message


def test_district_choices_from_a_set_are_listed_in_stable_order():
    first = expect_rule("district.unknown", validate_district, "兴庆", {"金凤区", "兴庆区", "西夏区"})
    again = expect_rule("district.unknown", validate_district, "兴庆", {"西夏区", "兴庆区", "金凤区"})
    assert "、".join(sorted({"金凤区", "兴庆区", "西夏区"})) in first.message
    assert first.message == again.message


def test_empty_district_is_rejected():
    expect_rule("district.empty", validate_district, "", SHENYANG)


# ---------------------------------------------------------------- clean values take a shortcut, with the same verdict
# Importers validate 100,000 cells per column, so a value already in its normal form is accepted
# without normalising. Padding it with a space sends it the long way (NFKC, strip, upper); the
# verdict must not depend on which way it went.


def _verdict(func, value):
    try:
        return "ok", func(value)
    except FieldError as error:
        return "refused", error.rule


def _same_verdict_both_ways(func, value):
    assert _verdict(func, value) == _verdict(func, f" {value} ")


uscc_like = st.one_of(
    valid_prefixes.map(make_uscc),
    st.builds(lambda authority, region, body: make_uscc(f"{authority}1{region}{body}"),  # mostly unknown regions
              st.sampled_from("19ANY"), st.from_regex(r"[0-9]{6}", fullmatch=True), st.text(USCC_CHARS, min_size=9,
                                                                                           max_size=9)),
    st.builds(lambda code, position, char: code[:position] + char + code[position + 1:],
              valid_prefixes.map(make_uscc), st.integers(0, 17), st.sampled_from(USCC_CHARS + "IOSVZ0")),
    st.builds(lambda a, b: f"{a}{b}", st.sampled_from("123456789ANY0B"), st.text(USCC_CHARS, min_size=16, max_size=18)),
)


@given(uscc_like)
def test_uscc_verdict_does_not_depend_on_the_shortcut(value):
    _same_verdict_both_ways(validate_uscc, value)
    if _verdict(validate_uscc, value)[0] == "ok":
        assert uscc_warnings(value) == uscc_warnings(f" {value} ")


@given(st.from_regex(r"1[0-9]{10}|1[3-9][0-9]{8,10}|0[0-9]{2,3}-?[0-9]{7,8}", fullmatch=True))
@example("10000000000")
@example("1381234567")
def test_phone_verdict_does_not_depend_on_the_shortcut(value):
    _same_verdict_both_ways(validate_phone, value)


@given(st.builds(lambda letter, province, rest: f"{letter}{province}{rest}", st.sampled_from("HPXh"),
                 st.sampled_from(["21", "64", "66", "71", "81", "99", "00"]), st.from_regex(r"[0-9]{9}", fullmatch=True)))
@example("X21010200001")
@example("h21010200001")
@example("H2101020000")
def test_insurance_code_verdict_does_not_depend_on_the_shortcut(value):
    _same_verdict_both_ways(validate_insurance_institution_code, value)


@given(st.one_of(
    st.from_regex(r"[a-z0-9._+-]{1,70}@([a-z0-9-]{1,64}\.){1,3}[a-z0-9-]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,10}@[a-z]{1,10}\.[0-9]{1,3}", fullmatch=True),
    st.builds(lambda local, domain: f"{local}@{domain}.cn", st.text("ab.", min_size=1, max_size=66),
              st.text("xy-", min_size=1, max_size=190)),
))
@example("ybj@example.123")
@example("a" * 65 + "@example.com")
@example("ybj@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 60 + ".cn")
def test_email_verdict_does_not_depend_on_the_shortcut(value):
    _same_verdict_both_ways(validate_email, value)


def test_a_required_text_is_normalised_and_trimmed():
    assert validate_required_text("  沈阳市和平区长青大药房（一店） ", "单位名称", 200) == "沈阳市和平区长青大药房(一店)"


def test_an_empty_required_text_is_refused_in_both_languages():
    with pytest.raises(FieldError) as err:
        validate_required_text(" \u3000 ", "单位名称", 200)
    assert err.value.rule == "text.empty"
    assert err.value.message == "单位名称不能为空 / 单位名称 is required"


def test_a_text_holding_a_nul_character_is_refused_in_both_languages_with_the_nul_shown():
    """xlsxwriter writes NUL as `_x0000_` and a reader gives it back; PostgreSQL's text refused the whole file's
    write with no row named, SQLite stored it: now the cell is refused with its row and column, on both."""
    with pytest.raises(FieldError) as err:
        validate_required_text("辽宁\x00医药", "配送企业", 200)
    assert err.value.rule == "text.nul"
    assert err.value.message == "配送企业含有不可见的空字符（NUL） / contains an invisible NUL character"
    assert "\\x00" in err.value.value


def test_a_text_longer_than_its_column_is_refused_counting_chinese_characters_as_one_each():
    assert validate_required_text("药" * 16, "最小制剂单位", 16) == "药" * 16
    with pytest.raises(FieldError) as err:
        validate_required_text("药" * 17, "最小制剂单位", 16)
    assert err.value.rule == "text.too_long"
    assert err.value.message == "最小制剂单位不能超过16个字符 / at most 16 characters, got 17"
