"""Generated data at benchmark sizes: institutions with unique names and codes, products, their files.

`sanjin.demo_data.make_institutions` does not scale to 100,000: its names come from ~2,000 place
pairs (it loops forever once they are used up) and its insurance codes take a global 5-digit serial
(a 6-digit serial at 100,000 makes a 12-digit code the importer refuses). Here each district has
its own serial (99,999 per district, 1.3 million over Shenyang's 13) and every name carries it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from models.states import KIND_LABELS, InstitutionKind
from models.validators import make_uscc, org_code_check_char
from sanjin.demo_data import (
    CHAINS,
    DISTRICTS,
    DRUGS,
    FAMILY,
    GIVEN,
    KIND_MIX,
    RURAL,
    SPECIAL_DRUGS,
)

PHARMACIES = (InstitutionKind.SINGLE_PHARMACY, InstitutionKind.CHAIN_PHARMACY)
PUBLIC = (InstitutionKind.COMMUNITY_HEALTH_CENTER, InstitutionKind.COMMUNITY_HEALTH_STATION,
          InstitutionKind.TOWNSHIP_HEALTH_CENTER, InstitutionKind.VILLAGE_CLINIC)
NAME = {
    InstitutionKind.SINGLE_PHARMACY: "沈阳市{d}{p}大药房{n}号店", InstitutionKind.CHAIN_PHARMACY: "{c}（{d}{p}{n}号店）",
    InstitutionKind.PRIVATE_CLINIC: "沈阳{d}{p}第{n}诊所", InstitutionKind.PRIVATE_HOSPITAL: "沈阳{d}{p}第{n}医院",
    InstitutionKind.COMMUNITY_HEALTH_CENTER: "{d}{p}第{n}社区卫生服务中心",
    InstitutionKind.COMMUNITY_HEALTH_STATION: "{d}{p}第{n}社区卫生服务站",
    InstitutionKind.TOWNSHIP_HEALTH_CENTER: "{d}{p}第{n}镇卫生院", InstitutionKind.VILLAGE_CLINIC: "{d}{p}第{n}村卫生室",
}
PLACES = [a + b for a in "长青东华新兴和平民主光明幸福胜利" for b in "建设中山朝阳永安泰山青年北陵南湖"]


@dataclass(frozen=True)
class InstitutionRow:
    row: dict[str, str]  # the application form's columns (sanjin.demo_data.APPLICATION_HEADER)
    kind: InstitutionKind
    district: str
    code: str
    proxied: bool


def make_institutions(count: int, seed: int = 2025) -> list[InstitutionRow]:
    """`count` valid applications with unique USCC, insurance code and name; village clinics are
    proxy-procured by a township health center of their district listed earlier in the same file."""
    rng = random.Random(seed)
    kinds = [k for k, _ in KIND_MIX]
    weights = [w for _, w in KIND_MIX]
    all_districts = list(DISTRICTS)
    rural = [d for d in DISTRICTS if d in RURAL]
    serials = dict.fromkeys(DISTRICTS, 0)
    townships: dict[str, list[str]] = {}
    out: list[InstitutionRow] = []
    chosen_kinds = rng.choices(kinds, weights, k=count * 2)
    k = 0
    while len(out) < count:
        kind = chosen_kinds[k % len(chosen_kinds)]
        k += 1
        district = rng.choice(rural if kind in (InstitutionKind.TOWNSHIP_HEALTH_CENTER,
                                                 InstitutionKind.VILLAGE_CLINIC) else all_districts)
        if kind == InstitutionKind.VILLAGE_CLINIC and not townships.get(district):
            continue
        serials[district] += 1
        n = serials[district]
        if n > 99_999:
            raise ValueError("more than 99,999 institutions in one district: the 11-digit insurance code is full")
        region = DISTRICTS[district]
        pharmacy = kind in PHARMACIES
        code = f"{'P' if pharmacy else 'H'}{region}{n:05d}"
        serial = len(out) + 1
        body = f"{10_000_000 + serial:08d}"
        uscc = make_uscc(("12" if kind in PUBLIC else "91") + region + body + org_code_check_char(body))
        parent = rng.choice(townships[district]) if kind == InstitutionKind.VILLAGE_CLINIC else ""
        if kind == InstitutionKind.TOWNSHIP_HEALTH_CENTER:
            townships.setdefault(district, []).append(code)
        minimum = 80 if kind == InstitutionKind.PRIVATE_HOSPITAL else 50
        name = NAME[kind].format(d=district, p=rng.choice(PLACES), n=n, c=rng.choice(CHAINS))
        row = {
            "单位名称": name, "单位地址": f"沈阳市{district}{rng.choice(PLACES)}路{rng.randint(1, 399)}号",
            "统一社会信用代码": uscc, "法人代表": _person(rng), "机构医保编码": code, "联系人": _person(rng),
            "联系电话": f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}",
            "电子邮箱": "" if kind == InstitutionKind.VILLAGE_CLINIC and serial % 3 else
            f"sj{serial:06d}@{'yd' if pharmacy else 'yl'}.example.cn",
            "所属区县": district, "机构类别": KIND_LABELS[kind],
            "特药定点": "是" if kind == InstitutionKind.CHAIN_PHARMACY and serial % 9 == 0 else "否",
            "承诺配备药品数量": str(rng.randint(minimum, minimum + 40)), "销售价格承诺": "按中选价",
            "承诺参加年限": str(rng.choice((1, 1, 2, 3))),
            "民营三级": "是" if kind == InstitutionKind.PRIVATE_HOSPITAL and serial % 5 == 0 else "否",
            "代采上级机构医保编码": parent,
        }
        out.append(InstitutionRow(row, kind, district, code, bool(parent)))
    return out


def _person(rng: random.Random) -> str:
    return rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


@dataclass(frozen=True)
class ProductRow:
    enterprise: int  # index into the enterprises list
    values: dict[str, object]  # Product columns


def make_products(count: int, enterprises: int, seed: int = 2025) -> list[ProductRow]:
    """`count` products with unique drug codes spread over `enterprises` enterprises (Product columns)."""
    rng = random.Random(seed)
    pool = [(cat, d) for cat, drugs in DRUGS.items() for d in drugs]
    out = []
    for i in range(count):
        ent = i % enterprises
        special = i % 97 == 0
        category, (drug, form, spec, atc) = (("内分泌", SPECIAL_DRUGS[i % len(SPECIAL_DRUGS)]) if special
                                             else pool[rng.randrange(len(pool))])
        price = Decimal(rng.randint(20000, 90000) if special else rng.randint(80, 9000)) / 100
        maker = f"基准{ent:04d}制药有限公司"
        out.append(ProductRow(ent, {
            "drug_code": f"X{atc}{i:08d}A001{ent:05d}", "name": drug, "dosage_form": form, "spec": spec,
            "conversion_ratio": str(rng.choice((7, 14, 28, 30, 36))),
            "min_unit": "片" if "片" in form else ("粒" if "胶囊" in form else "支"), "package_unit": "盒",
            "package_material": rng.choice(["铝塑泡罩", "高密度聚乙烯瓶", "铝铝泡罩"]), "manufacturer": maker,
            "bidder": maker, "winning_price": price,
            "approval_number": f"国药准字H20{rng.randint(10, 25):02d}{rng.randint(0, 9999):04d}",
            "category": category, "is_special": special,
        }))
    return out
