"""Synthetic but realistic data for the Shenyang demo: enterprises, products, ~2,000 institutions.

Deterministic (seeded), written as the very files people upload: the enterprises' product tables
(XLSX, the 12 headers of 002 att.2) and waves of institution applications (CSV and XLSX).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from models.states import KIND_LABELS, InstitutionKind
from models.validators import make_uscc, org_code_check_char
from tasks.intake.application_rows import APPLICATION_COLUMNS, APPLICATION_OPTIONAL_COLUMNS
from tasks.intake.declaration_import import DECLARATION_COLUMNS

DISTRICTS: dict[str, str] = {
    "和平区": "210102", "沈河区": "210103", "大东区": "210104", "皇姑区": "210105", "铁西区": "210106",
    "苏家屯区": "210111", "浑南区": "210112", "沈北新区": "210113", "于洪区": "210114", "辽中区": "210115",
    "康平县": "210123", "法库县": "210124", "新民市": "210181",
}
RURAL = {"苏家屯区", "沈北新区", "于洪区", "辽中区", "康平县", "法库县", "新民市", "浑南区"}

# (name, dosage form, spec, ATC-like class) per focus category; the last group are 特药.
DRUGS: dict[str, list[tuple[str, str, str, str]]] = {
    "心脑血管": [("苯磺酸氨氯地平片", "片剂", "5mg", "C08CA"), ("阿托伐他汀钙片", "片剂", "20mg", "C10AA"),
             ("瑞舒伐他汀钙片", "片剂", "10mg", "C10AA"), ("厄贝沙坦片", "片剂", "150mg", "C09CA"),
             ("缬沙坦胶囊", "胶囊剂", "80mg", "C09CA"), ("硫酸氢氯吡格雷片", "片剂", "75mg", "C01AC"),
             ("琥珀酸美托洛尔缓释片", "缓释片", "47.5mg", "C07AB"), ("硝苯地平控释片", "控释片", "30mg", "C08CA"),
             ("替米沙坦片", "片剂", "80mg", "C09CA"), ("阿司匹林肠溶片", "肠溶片", "100mg", "B01AC"),
             ("单硝酸异山梨酯缓释片", "缓释片", "40mg", "C01DA"), ("坎地沙坦酯片", "片剂", "8mg", "C09CA")],
    "消化系统": [("奥美拉唑肠溶胶囊", "胶囊剂", "20mg", "A02BC"), ("雷贝拉唑钠肠溶片", "肠溶片", "10mg", "A02BC"),
             ("泮托拉唑钠肠溶片", "肠溶片", "40mg", "A02BC"), ("枸橼酸莫沙必利片", "片剂", "5mg", "A03FA"),
             ("铝碳酸镁咀嚼片", "咀嚼片", "0.5g", "A02AD"), ("埃索美拉唑镁肠溶片", "肠溶片", "20mg", "A02BC"),
             ("熊去氧胆酸胶囊", "胶囊剂", "250mg", "A05AA")],
    "呼吸系统": [("孟鲁司特钠片", "片剂", "10mg", "R03DC"), ("盐酸氨溴索片", "片剂", "30mg", "R05CB"),
             ("布地奈德吸入混悬液", "吸入剂", "2ml:1mg", "R03BA"), ("噻托溴铵吸入粉雾剂", "吸入粉雾剂", "18μg", "R03BB"),
             ("乙酰半胱氨酸泡腾片", "泡腾片", "0.6g", "R05CB"), ("盐酸左西替利嗪片", "片剂", "5mg", "R06AE")],
    "内分泌": [("盐酸二甲双胍缓释片", "缓释片", "0.5g", "A10BA"), ("格列美脲片", "片剂", "2mg", "A10BB"),
            ("阿卡波糖片", "片剂", "50mg", "A10BF"), ("磷酸西格列汀片", "片剂", "100mg", "A10BH"),
            ("达格列净片", "片剂", "10mg", "A10BK"), ("左甲状腺素钠片", "片剂", "50μg", "H03AA"),
            ("瑞格列奈片", "片剂", "1mg", "A10BX")],
}
SPECIAL_DRUGS = [("甲磺酸伊马替尼片", "片剂", "0.1g", "L01EA"), ("来那度胺胶囊", "胶囊剂", "25mg", "L04AX"),
                 ("醋酸阿比特龙片", "片剂", "0.25g", "L02BX"), ("吉非替尼片", "片剂", "0.25g", "L01EB")]
FAMILY = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志国庆文斌宇浩凯鹏辉晨"
PLACE = "长青东华新兴和平民主光明幸福胜利建设中山朝阳永安泰山青年北陵南湖五里河兴隆红旗建华东陵友谊"


def person(rng: random.Random) -> str:
    return rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def place(rng: random.Random) -> str:
    return "".join(rng.sample(PLACE, 2))


@dataclass
class EnterpriseData:
    name: str
    rows: list[dict[str, str]] = field(default_factory=list)


@dataclass
class InstitutionData:
    row: dict[str, str]
    kind: InstitutionKind
    district: str
    code: str


def _uscc(region: str, serial: int, category: str) -> str:
    body = f"{serial:08d}"
    return make_uscc(category + region + body + org_code_check_char(body))


def make_enterprises(rng: random.Random, count: int = 32) -> list[EnterpriseData]:
    """Enterprises with 6–14 products each, in the focus categories; two also carry 特药."""
    suffixes = ["制药有限公司", "药业股份有限公司", "医药集团有限公司", "生物制药有限公司"]
    cities = ["沈阳", "北京", "上海", "浙江", "江苏", "山东", "石药", "齐鲁", "华北", "扬子江", "正大", "科伦", "恒瑞",
              "信立泰", "京新", "华海", "海正", "普洛", "东北", "辽宁"]
    enterprises = []
    for i in range(count):
        name = f"{cities[i % len(cities)]}{place(rng)}{rng.choice(suffixes)}"
        ent = EnterpriseData(name)
        pool = [(cat, d) for cat, drugs in DRUGS.items() for d in drugs]
        chosen = rng.sample(pool, rng.randint(6, 14))
        if i in (3, 17):
            chosen += [("内分泌", d) for d in SPECIAL_DRUGS[(i % 2) * 2:(i % 2) * 2 + 2]]
        for j, (category, (drug, form, spec, atc)) in enumerate(chosen):
            special = (drug, form, spec, atc) in SPECIAL_DRUGS
            price = Decimal(rng.randint(80, 9000)) / 100 if not special else Decimal(rng.randint(20000, 90000)) / 100
            code = f"X{atc}{(i * 31 + j) % 10000:04d}{'A001'}{j:04d}{i + 10000:05d}"
            ent.rows.append({
                "药品统一编码": code, "产品名称": drug, "剂型": form, "规格": spec, "转换比": str(rng.choice((7, 14, 28, 30, 36))),
                "最小制剂单位": "片" if "片" in form else ("粒" if "胶囊" in form else "支"),
                "最小包装单位": "盒", "包装材质": rng.choice(["铝塑泡罩", "高密度聚乙烯瓶", "铝铝泡罩"]),
                "生产企业": name, "投标企业": name, "中选价(元)": f"{price:.2f}",
                "批准文号": f"国药准字H20{rng.randint(10, 25):02d}{rng.randint(0, 9999):04d}",
                "类别": category, "特药": "是" if special else "否",
            })
        enterprises.append(ent)
    return enterprises


KIND_MIX: list[tuple[InstitutionKind, float]] = [
    (InstitutionKind.SINGLE_PHARMACY, 0.27), (InstitutionKind.CHAIN_PHARMACY, 0.25),
    (InstitutionKind.PRIVATE_CLINIC, 0.14), (InstitutionKind.PRIVATE_HOSPITAL, 0.04),
    (InstitutionKind.COMMUNITY_HEALTH_CENTER, 0.05), (InstitutionKind.COMMUNITY_HEALTH_STATION, 0.07),
    (InstitutionKind.TOWNSHIP_HEALTH_CENTER, 0.06), (InstitutionKind.VILLAGE_CLINIC, 0.12),
]
NAME_PATTERNS = {
    InstitutionKind.SINGLE_PHARMACY: "沈阳市{district}{place}大药房", InstitutionKind.CHAIN_PHARMACY: "{chain}（{place}店）",
    InstitutionKind.PRIVATE_CLINIC: "沈阳{place}{spec}诊所", InstitutionKind.PRIVATE_HOSPITAL: "沈阳{place}{spec}医院",
    InstitutionKind.COMMUNITY_HEALTH_CENTER: "{district}{place}街道社区卫生服务中心",
    InstitutionKind.COMMUNITY_HEALTH_STATION: "{district}{place}社区卫生服务站",
    InstitutionKind.TOWNSHIP_HEALTH_CENTER: "{district}{place}镇卫生院", InstitutionKind.VILLAGE_CLINIC: "{district}{place}村卫生室",
}
CHAINS = ["成大方圆大药房", "国大药房", "老百姓大药房", "天士力大药房", "益丰大药房", "华氏大药房"]


def make_institutions(rng: random.Random, count: int = 2000) -> list[InstitutionData]:
    """Institutions of every kind over Shenyang's districts; village clinics are proxy-procured by a 卫生院."""
    out: list[InstitutionData] = []
    townships: dict[str, list[str]] = {}
    names: set[str] = set()
    kinds = [k for k, _ in KIND_MIX]
    weights = [w for _, w in KIND_MIX]
    serial = 0
    while len(out) < count:
        kind = rng.choices(kinds, weights)[0]
        district = rng.choice([d for d in DISTRICTS if d in RURAL] if kind in (
            InstitutionKind.TOWNSHIP_HEALTH_CENTER, InstitutionKind.VILLAGE_CLINIC) else list(DISTRICTS))
        if kind == InstitutionKind.VILLAGE_CLINIC and not townships.get(district):
            continue
        name = NAME_PATTERNS[kind].format(district=district, place=place(rng) + rng.choice("一二三四五六七八九") * (serial % 2),
                                          chain=rng.choice(CHAINS), spec=rng.choice(["综合", "中西医结合", "内科", "康复", ""]))
        if name in names:
            continue
        names.add(name)
        serial += 1
        region = DISTRICTS[district]
        public = kind in (InstitutionKind.COMMUNITY_HEALTH_CENTER, InstitutionKind.COMMUNITY_HEALTH_STATION,
                          InstitutionKind.TOWNSHIP_HEALTH_CENTER, InstitutionKind.VILLAGE_CLINIC)
        pharmacy = kind in (InstitutionKind.SINGLE_PHARMACY, InstitutionKind.CHAIN_PHARMACY)
        code = f"{'P' if pharmacy else 'H'}{region}{serial:05d}"
        parent = ""
        if kind == InstitutionKind.VILLAGE_CLINIC:
            parent = rng.choice(townships[district])
        if kind == InstitutionKind.TOWNSHIP_HEALTH_CENTER:
            townships.setdefault(district, []).append(code)
        # Shenyang enforces the count each institution commits to (no per-kind floor); the demo's list has ~34
        # generic names, so commitments stay below that.
        minimum = 16 if kind == InstitutionKind.PRIVATE_HOSPITAL else 10
        email = "" if kind == InstitutionKind.VILLAGE_CLINIC and serial % 3 else f"sj{serial:05d}@{'yd' if pharmacy else 'yl'}.example.cn"
        row = {
            "单位名称": name, "单位地址": f"沈阳市{district}{place(rng)}路{rng.randint(1, 399)}号",
            "统一社会信用代码": _uscc(region, 10_000_000 + serial, "12" if public else "91"),
            "法人代表": person(rng), "机构医保编码": code, "联系人": person(rng),
            "联系电话": f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}", "电子邮箱": email,
            "所属区县": district, "机构类别": KIND_LABELS[kind],
            "特药定点": "是" if kind == InstitutionKind.CHAIN_PHARMACY and serial % 9 == 0 else "否",
            "承诺配备药品数量": str(rng.randint(minimum, minimum + 10)), "销售价格承诺": "按中选价",
            "承诺参加年限": str(rng.choice((1, 1, 2, 3))),
            "民营三级": "是" if kind == InstitutionKind.PRIVATE_HOSPITAL and serial % 5 == 0 else "否",
            "代采上级机构医保编码": parent,
        }
        out.append(InstitutionData(row, kind, district, code))
    return out


APPLICATION_HEADER = (*APPLICATION_COLUMNS, *APPLICATION_OPTIONAL_COLUMNS)
DECLARATION_HEADER = (*DECLARATION_COLUMNS, "类别", "特药")


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Sheet1")
    sheet.write_row(0, 0, list(header))
    for r, row in enumerate(rows, start=1):
        for c, column in enumerate(header):
            sheet.write_string(r, c, row.get(column, ""))
    workbook.close()
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def spoil(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Copies of a few rows with the mistakes people make: a typo in the USCC, '12,5'-style numbers, bad phone."""
    bad = [dict(r) for r in rows[:4]]
    code = bad[0]["统一社会信用代码"]
    bad[0]["统一社会信用代码"] = code[:-1] + ("0" if code[-1] != "0" else "1")
    bad[1]["联系电话"] = "024-12"
    bad[2]["所属区县"] = "朝阳区"
    bad[3]["承诺配备药品数量"] = "二十"
    return bad
