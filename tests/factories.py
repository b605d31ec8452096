"""Factories for tests: real programs from the shipped files, valid codes, rows in a real database.

Other test modules ADD functions here; keep each one small and named for what it makes.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert
from sqlmodel import Session, select

from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
from models.clock import SHANGHAI, FixedClock
from models.enrollment import Application, Batch, Institution
from models.program import Program, User
from models.states import ApplicationState, BatchState, DeclarationState, InstitutionKind, Role
from models.validators import make_uscc
from tasks.lists.versions import publish_list
from tasks.programs import get_program, load_program
from tasks.users import add_user

ROOT = Path(__file__).resolve().parent.parent
PROGRAM_FILES = {
    "shenyang-2025": ROOT / "deploy" / "programs" / "shenyang-2025.yaml",
    "ningxia-2025": ROOT / "deploy" / "programs" / "ningxia-2025.yaml",
    "jiangxi-2025": ROOT / "deploy" / "programs" / "jiangxi-2025.yaml",
}
_serial = itertools.count(1)


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def clock_at(*args: int) -> FixedClock:
    return FixedClock(shanghai(*args))


def make_program(engine: Engine, slug: str = "shenyang-2025", clock: FixedClock | None = None) -> Program:
    load_program(engine, PROGRAM_FILES[slug], clock=clock or clock_at(2025, 8, 1, 9))
    with Session(engine) as session:
        program = session.exec(select(Program).where(Program.slug == slug)).one()
        return program


def valid_uscc(n: int, region: str = "210102", prefix: str = "91") -> str:
    body = f"{prefix}{region}{n:09d}"[:17]
    return make_uscc(body)


def make_institution(engine: Engine, *, district: str = "和平区", kind: InstitutionKind = InstitutionKind.CHAIN_PHARMACY,
                     name: str | None = None, email: str | None = "inst@example.cn",
                     proxy_parent_id: int | None = None, special: bool = False) -> Institution:
    n = next(_serial)
    inst = Institution(name=name or f"测试机构{n}", address=f"沈阳市{district}测试路{n}号", uscc=valid_uscc(n),
                       legal_rep="张三", insurance_code=f"{'P' if 'pharmacy' in kind.value else 'H'}210102{n:05d}",
                       contact_name="李四", phone="13800000000", email=email, district=district, kind=kind,
                       special_designated=special, proxy_parent_id=proxy_parent_id)
    with Session(engine, expire_on_commit=False) as session:
        session.add(inst)
        session.commit()
        return inst


def make_applications(engine: Engine, program: Program, institutions: list[Institution], *,
                      submitted_at: datetime, state: ApplicationState = ApplicationState.SUBMITTED) -> list[int]:
    """Applications as an import would leave them (bulk, one transaction)."""
    with Session(engine) as session:
        session.execute(insert(Application), [
            {"program_id": program.id, "institution_id": inst.id, "attempt": 1, "district": inst.district,
             "state": state, "committed_drug_count": 60, "submitted_at": submitted_at, "findings": []}
            for inst in institutions])
        session.commit()
        ids = session.exec(select(Application.id).where(Application.program_id == program.id)
                           .order_by(Application.id)).all()  # type: ignore[arg-type]
        return [i for i in ids if i is not None]


def ensure_user(engine: Engine, name: str, role: Role, *, districts: list[str] | None = None,
                password: str | None = None, **fields: Any) -> None:
    """A test's user as asked for, whether or not an earlier factory made it: `sanjin user add` (add_user) refuses
    an existing name, so a second factory call brings the row to what this test needs instead."""
    from tasks.signin.passwords import hash_password

    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            session.close()
            add_user(engine, name, role, districts=districts or [], password=password, **fields)
            return
        user.role, user.districts = role, list(districts or [])
        if password is not None:
            user.password_hash = hash_password(password)
        for key, value in fields.items():
            if value is not None:
                setattr(user, key, value)
        session.add(user)
        session.commit()


def make_reviewers(engine: Engine, districts: list[str]) -> dict[str, str]:
    """One reviewer per district plus the city manager `manager`; returns district → user name."""
    ensure_user(engine, "manager", Role.PROGRAM_MANAGER)
    names = {}
    for i, district in enumerate(districts):
        names[district] = f"reviewer{i}"
        ensure_user(engine, names[district], Role.DISTRICT_REVIEWER, districts=[district])
    return names


def make_running_application(engine: Engine, program: Program, institution: Institution, *,
                             running_at: datetime) -> int:
    """An application whose batch already ran (published on `running_at`): the institution takes part."""
    with Session(engine) as session:
        number = (session.execute(select(func.max(Batch.number)).where(Batch.program_id == program.id))
                  .scalar() or 0) + 1
        day = running_at.astimezone(SHANGHAI).date()
        batch = Batch(program_id=program.id or 0, number=number, state=BatchState.RUNNING, opened_on=day,
                      cutoff_on=day, declared_at=running_at, matured_at=running_at, running_at=running_at)
        session.add(batch)
        session.flush()
        app = Application(program_id=program.id or 0, institution_id=institution.id or 0, district=institution.district,
                          state=ApplicationState.RUNNING, batch_id=batch.id, committed_drug_count=60,
                          submitted_at=running_at, decided_at=running_at)
        session.add(app)
        session.commit()
        return app.id or 0


def make_enterprise(engine: Engine, name: str | None = None) -> Enterprise:
    n = next(_serial)
    enterprise = Enterprise(name=name or f"测试制药有限公司{n}")
    with Session(engine, expire_on_commit=False) as session:
        session.add(enterprise)
        session.commit()
        return enterprise


def make_product(engine: Engine, enterprise: Enterprise, *, special: bool = False, name: str | None = None) -> Product:
    """A product with a valid 23-character western drug code, unique per call."""
    n = next(_serial)
    product = Product(enterprise_id=enterprise.id or 0, drug_code=f"XC10AA{n:04d}A001010100483",
                      name=name or f"阿托伐他汀钙片{n}", dosage_form="片剂", spec="20mg", conversion_ratio="28",
                      min_unit="片", package_unit="盒", package_material="铝塑泡罩", manufacturer=enterprise.name,
                      bidder=enterprise.name, winning_price=Decimal("12.50"), approval_number=f"国药准字H2019{n:04d}",
                      category="心脑血管", is_special=special)
    with Session(engine, expire_on_commit=False) as session:
        session.add(product)
        session.commit()
        return product


def publish_drug_list(engine: Engine, program: Program, products: list[Product], *, clock: FixedClock) -> None:
    """Accepted declarations of these products and a published drug list version containing them."""
    with Session(engine) as session:
        for enterprise_id in sorted({p.enterprise_id for p in products}):
            declaration = EnterpriseDeclaration(program_id=program.id or 0, enterprise_id=enterprise_id,
                                                state=DeclarationState.ACCEPTED, submitted_at=clock.now(),
                                                decided_at=clock.now(), decided_by="manager")
            session.add(declaration)
            session.flush()
            session.add_all([DeclarationItem(declaration_id=declaration.id or 0, product_id=p.id or 0)
                             for p in products if p.enterprise_id == enterprise_id])
        session.flush()
        row, defn = get_program(session, program.slug)
        publish_list(session, row, defn, "drugs", clock=clock)
        session.commit()


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: a re-run that changes nothing leaves this identical."""
    from sqlalchemy import func as sql_func

    from models.tables import metadata

    with Session(engine) as session:
        return {t.name: session.execute(select(sql_func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


def make_order(engine: Engine, program: Program, institution: Institution, product: Product, *,
               ordered_at: datetime, quantity: int = 10, unit_price: str | None = None,
               order_no: str | None = None) -> int:
    """An order line as the platform import leaves it; returns its id."""
    from models.operations import PurchaseOrder

    price = Decimal(unit_price) if unit_price is not None else product.winning_price
    order = PurchaseOrder(program_id=program.id or 0, order_no=order_no or f"PO{next(_serial):08d}",
                          institution_id=institution.id or 0, product_id=product.id or 0,
                          enterprise_id=product.enterprise_id, distributor="国药控股沈阳有限公司", quantity=quantity,
                          unit_price=price, amount=price * quantity, ordered_at=ordered_at)
    with Session(engine, expire_on_commit=False) as session:
        session.add(order)
        session.commit()
        return order.id or 0


def make_delivery(engine: Engine, order_id: int, *, arrived_at: datetime, quantity: int = 10,
                  accepted_on: object = None) -> None:
    from models.operations import Delivery

    with Session(engine) as session:
        session.add(Delivery(order_id=order_id, arrived_at=arrived_at, quantity=quantity,
                             accepted_on=accepted_on or arrived_at.astimezone(SHANGHAI).date()))
        session.commit()


def make_settlement(engine: Engine, order_id: int, *, paid_on: object, amount: str) -> None:
    from models.operations import Settlement

    with Session(engine) as session:
        session.add(Settlement(order_id=order_id, paid_on=paid_on, amount=Decimal(amount)))
        session.commit()


def make_sale_price(engine: Engine, program: Program, institution: Institution, product: Product, *,
                    offline: str, online: str | None = None, effective_on: object) -> None:
    from models.operations import SalePrice

    with Session(engine) as session:
        session.add(SalePrice(program_id=program.id or 0, institution_id=institution.id or 0,
                              product_id=product.id or 0, offline_price=Decimal(offline),
                              online_price=Decimal(online) if online is not None else None,
                              effective_on=effective_on))
        session.commit()
