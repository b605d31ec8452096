"""Builders for the upload files the importers read: XLSX via xlsxwriter, CSV in any encoding.

Identifiers are real-shaped: USCCs carry a valid GB 32100 check character AND a valid GB 11714
organisation-code check at position 17 (so the importer has nothing to warn about unless a
test wants it), regions are Shenyang districts from GB/T 2260.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

from models.validators import make_uscc, org_code_check_char
from tasks.intake.application_rows import APPLICATION_COLUMNS, APPLICATION_OPTIONAL_COLUMNS
from tasks.intake.declaration_import import DECLARATION_COLUMNS

SHENYANG_DISTRICTS: dict[str, str] = {
    "和平区": "210102", "沈河区": "210103", "大东区": "210104", "皇姑区": "210105", "铁西区": "210106",
    "苏家屯区": "210111", "浑南区": "210112", "沈北新区": "210113", "于洪区": "210114", "辽中区": "210115",
    "康平县": "210123", "法库县": "210124", "新民市": "210181",
}

APPLICATION_HEADER: tuple[str, ...] = (*APPLICATION_COLUMNS, *APPLICATION_OPTIONAL_COLUMNS)
DECLARATION_HEADER: tuple[str, ...] = (*DECLARATION_COLUMNS, "类别", "特药")


def uscc(n: int, district: str = "和平区", category: str = "12") -> str:
    """A valid USCC for serial `n` (12 = 事业单位, the usual registration of public clinics)."""
    body = f"{n:08d}"
    return make_uscc(category + SHENYANG_DISTRICTS[district] + body + org_code_check_char(body))


def bad_check_char(code: str) -> str:
    """The same USCC with a wrong 18th character (what a typo in the last digit produces)."""
    last = "0" if code[-1] != "0" else "1"
    return code[:-1] + last


def insurance_code(n: int, *, pharmacy: bool = False, district: str = "和平区") -> str:
    return ("P" if pharmacy else "H") + SHENYANG_DISTRICTS[district] + f"{n:05d}"


_KIND_NAMES = {
    "社区卫生服务中心": "社区卫生服务中心", "社区卫生服务站": "社区卫生服务站", "乡镇卫生院": "卫生院",
    "村卫生室": "村卫生室", "民营医院": "医院", "民营诊所": "诊所", "连锁药店": "大药房", "单体药店": "药店",
}


def application_row(n: int, kind: str = "社区卫生服务中心", district: str = "和平区", **overrides: Any) -> dict[str, Any]:
    """A valid application row for institution `n`; numbers stay numbers so XLSX cells are numeric."""
    pharmacy = kind in ("连锁药店", "单体药店")
    row: dict[str, Any] = {
        "单位名称": f"沈阳市{district}测试{n}号{_KIND_NAMES[kind]}",
        "单位地址": f"辽宁省沈阳市{district}测试路{n}号",
        "统一社会信用代码": uscc(n, district, "92" if pharmacy else "12"),
        "法人代表": f"张{n}",
        "机构医保编码": insurance_code(n, pharmacy=pharmacy, district=district),
        "联系人": f"李{n}",
        "联系电话": 13800000000 + n,  # a number cell, as Excel users type it
        "电子邮箱": f"inst{n}@example.cn",
        "所属区县": district,
        "机构类别": kind,
        "特药定点": "否",
        "承诺配备药品数量": 60,
        "销售价格承诺": "按中选价",
        "承诺参加年限": 1,
        "民营三级": "否",
        "代采上级机构医保编码": "",
    }
    row.update(overrides)
    return row


def product_row(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid 002 att.2 row: 23-character western drug code, 国药准字H + 8 digits, price as a number."""
    row: dict[str, Any] = {
        "药品统一编码": f"XC10AA{n:04d}A001010100483",
        "产品名称": f"阿托伐他汀钙片{n}",
        "剂型": "片剂",
        "规格": "20mg",
        "转换比": 28,
        "最小制剂单位": "片",
        "最小包装单位": "盒",
        "包装材质": "铝塑泡罩",
        "生产企业": "测试制药有限公司",
        "投标企业": "测试制药有限公司",
        "中选价(元)": 12.5,
        "批准文号": f"国药准字H2019{n:04d}",
        "类别": "心脑血管",
        "特药": "否",
    }
    row.update(overrides)
    return row


def _cells(header: Sequence[str], row: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    if isinstance(row, Mapping):
        return [row.get(h, "") for h in header]
    return list(row)


def write_xlsx(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Mapping[str, Any] | Sequence[Any]],
    *,
    leading_blank_rows: int = 0,
    blank_rows_after: Iterable[int] = (),
) -> Path:
    """An .xlsx whose cells keep their Python types (str → text cell, int/float → number cell)."""
    gaps = set(blank_rows_after)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Sheet1")
    r = leading_blank_rows
    sheet.write_row(r, 0, list(header))
    for i, row in enumerate(rows):
        r += 1
        for col, value in enumerate(_cells(header, row)):
            if isinstance(value, str):
                sheet.write_string(r, col, value)
            elif value is not None:
                sheet.write(r, col, value)
        if i in gaps:
            r += 1
    workbook.close()
    return path


def csv_bytes(header: Sequence[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]], encoding: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(list(header))
    for row in rows:
        writer.writerow(["" if v is None else v for v in _cells(header, row)])
    return buffer.getvalue().encode(encoding)


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]], *, encoding: str = "utf-8-sig"
) -> Path:
    """CSV as Excel saves it: "CSV UTF-8" is utf-8-sig (with BOM), plain "CSV" on Chinese Windows is GB18030."""
    path.write_bytes(csv_bytes(header, rows, encoding))
    return path
