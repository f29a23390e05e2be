"""Certificate holders and a customer's additional interests (holder links with their flags).

A holder is shared: the same company may be linked to many customers. Holders are identified by
``holder_key`` (normalised name + address), so retyping one with other spacing or case links the
existing row instead of creating a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.activity import record
from app.extensions import db
from app.models import Customer, CustomerHolder, Holder, User
from app.models.holders import holder_key
from app.validation import InvalidInput, normalize_email, normalize_phone, normalize_state, normalize_zip

FLAGS = ("additional_insured", "waiver_of_subrogation", "primary_noncontributory")
FLAG_LABELS = {
    "additional_insured": "Additional insured",
    "waiver_of_subrogation": "Waiver of subrogation",
    "primary_noncontributory": "Primary & non-contributory",
}


class HolderError(ValueError):
    """A holder change that cannot be made; ``errors`` maps field names to messages for the form."""

    def __init__(self, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.errors = errors or {}


@dataclass(frozen=True)
class HolderValues:
    name: str
    address: str
    city: str
    state: str
    zip_code: str
    email: str = ""
    phone: str = ""

    @property
    def key(self) -> str:
        return holder_key(self.name, self.address, self.city, self.state, self.zip_code)


def clean_holder(values: dict) -> HolderValues:
    """Check a holder typed in a form or read from a CSV row; raise HolderError with per-field messages."""
    errors: dict[str, str] = {}

    def text(name: str, limit: int, required: bool = True) -> str:
        value = " ".join(str(values.get(name) or "").split())
        if required and not value:
            errors[name] = "This field is required."
        elif len(value) > limit:
            errors[name] = f"At most {limit} characters."
        return value

    name = text("name", 200)
    address = text("address", 200)
    city = text("city", 100)
    state = zip_code = email = phone = ""
    try:
        state = normalize_state(values.get("state"))
    except InvalidInput as exc:
        errors["state"] = str(exc)
    try:
        zip_code = normalize_zip(values.get("zip_code"))
    except InvalidInput as exc:
        errors["zip_code"] = str(exc)
    if str(values.get("email") or "").strip():
        try:
            email = _email(values.get("email"))
        except InvalidInput as exc:
            errors["email"] = str(exc)
    if str(values.get("phone") or "").strip():
        try:
            phone = normalize_phone(values.get("phone"))
        except InvalidInput as exc:
            errors["phone"] = str(exc)
    if errors:
        raise HolderError("Please correct the highlighted fields.", errors)
    return HolderValues(name=name, address=address, city=city, state=state, zip_code=zip_code, email=email,
                        phone=phone)


_PLAIN_EMAIL = re.compile(r"^[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
                          r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$")


def _email(value) -> str:
    """Plain ASCII addresses (nearly all) are checked by a strict pattern, which is 30x faster than the full
    validator on a 50,000-row import; anything else goes through the full validator."""
    text = str(value or "").strip()
    if len(text) <= 254 and _PLAIN_EMAIL.match(text):
        local, domain = text.rsplit("@", 1)
        return f"{local}@{domain.lower()}"
    return normalize_email(text)


def find_holder(key: str) -> Holder | None:
    return db.session.scalar(sa.select(Holder).where(Holder.normalized_key == key))


def get_or_create_holder(values: HolderValues) -> tuple[Holder, bool]:
    """The holder with the same normalised name + address, or a new one. Fills a missing e-mail / phone."""
    holder = find_holder(values.key)
    if holder is not None:
        if values.email and not holder.email:
            holder.email = values.email
        if values.phone and not holder.phone:
            holder.phone = values.phone
        return holder, False
    holder = Holder(name=values.name, email=values.email, phone=values.phone, address=values.address,
                    city=values.city, state=values.state, zip_code=values.zip_code, normalized_key=values.key)
    db.session.add(holder)
    db.session.flush()
    return holder, True


def linked_holders(customer_id: int) -> list[CustomerHolder]:
    stmt = (
        sa.select(CustomerHolder)
        .join(Holder)
        .where(CustomerHolder.customer_id == customer_id)
        .options(sa.orm.contains_eager(CustomerHolder.holder))
        .order_by(sa.func.lower(Holder.name), Holder.id)
    )
    return list(db.session.scalars(stmt))


HOLDERS_PER_PAGE = 50


def linked_holders_page(customer_id: int, *, after: str | None = None, before: str | None = None, page: int = 1,
                        per_page: int | None = None):
    """One seek page (app/pagination.py) of a customer's additional interests in the order of
    ``linked_holders`` (name without case, then id), each with its holder, and a capped total.

    The sort key is read from the database with the row (``lower()`` as the database does it), so
    "Next" starts exactly after the last row shown whatever the names' letters."""
    from app import pagination

    sort_name = sa.func.lower(Holder.name)
    stmt = (sa.select(CustomerHolder, sort_name.label("sort_name")).join(Holder)
            .where(CustomerHolder.customer_id == customer_id)
            .options(sa.orm.contains_eager(CustomerHolder.holder)))
    result = pagination.seek_page(
        stmt, (sort_name, Holder.id), lambda row: (row.sort_name, row[0].holder_id), descending=False, after=after,
        before=before, page=page, per_page=per_page or HOLDERS_PER_PAGE, scalars=False,
        count_stmt=sa.select(CustomerHolder.id).where(CustomerHolder.customer_id == customer_id))
    result.items = [row[0] for row in result.items]
    return result


def get_link(customer_id: int, link_id: int) -> CustomerHolder | None:
    link = db.session.get(CustomerHolder, link_id)
    if link is None or link.customer_id != customer_id:
        return None
    return link


def _flags(values: dict) -> dict[str, bool]:
    return {flag: bool(values.get(flag)) for flag in FLAGS}


def add_holder(customer: Customer, values: dict, *, actor: User | None, now: datetime) -> CustomerHolder:
    """Link a holder (existing one with the same name + address, or a new one) to the customer."""
    cleaned = clean_holder(values)
    holder, created = get_or_create_holder(cleaned)
    existing = db.session.scalar(sa.select(CustomerHolder).filter_by(customer_id=customer.id, holder_id=holder.id))
    if existing is not None:
        raise HolderError(f"{holder.name} is already an additional interest of this customer.",
                          {"name": "Already linked to this customer."})
    link = CustomerHolder(customer_id=customer.id, holder_id=holder.id, **_flags(values))
    link.holder = holder
    db.session.add(link)
    db.session.flush()
    record("customer", customer.id, "holder_linked", actor=actor, customer_id=customer.id, now=now,
           message=f"{holder.name} added to additional interests" + (" (new holder)" if created else ""))
    return link


def edit_link(link: CustomerHolder, values: dict, *, actor: User | None, now: datetime) -> CustomerHolder:
    """Change the holder's details (shared by every customer it is linked to) and this link's flags."""
    cleaned = clean_holder(values)
    holder = link.holder
    other = find_holder(cleaned.key)
    if other is not None and other.id != holder.id:
        raise HolderError("Another holder already has this name and address.",
                          {"name": "Another holder already has this name and address."})
    for field in ("name", "address", "city", "state", "zip_code", "email", "phone"):
        setattr(holder, field, getattr(cleaned, field))
    holder.normalized_key = cleaned.key
    for flag, value in _flags(values).items():
        setattr(link, flag, value)
    db.session.flush()
    flags = ", ".join(FLAG_LABELS[f] for f in FLAGS if getattr(link, f)) or "no flags"
    record("customer", link.customer_id, "holder_edited", actor=actor, customer_id=link.customer_id, now=now,
           message=f"{holder.name} edited ({flags})")
    return link


def unlink_holder(link: CustomerHolder, *, actor: User | None, now: datetime) -> None:
    """Remove the link; the holder stays (other customers may use it, and so may the history)."""
    name = link.holder.name
    customer_id = link.customer_id
    db.session.delete(link)
    db.session.flush()
    record("customer", customer_id, "holder_unlinked", actor=actor, customer_id=customer_id, now=now,
           message=f"{name} removed from additional interests")


# -- demo data ---------------------------------------------------------------------------------------

DEMO_HOLDERS = [
    ("Northwind Builders Inc", "certs@northwind.example.com", "500 Congress Ave", "Austin", "TX", "78701"),
    ("Lakeside Property Management", "insurance@lakeside.example.com", "12 Harbor Rd", "Madison", "WI", "53703"),
    ("Summit Tower LLC", "risk@summit.example.com", "9 Peak St", "Denver", "CO", "80202"),
    ("Riverbend School District", "facilities@riverbend.example.org", "44 School Ln", "Round Rock", "TX", "78664"),
    ("Cedar Park Plaza Owners", "", "1890 Whitestone Blvd", "Cedar Park", "TX", "78613"),
    ("Bayou City General Contractors", "coi@bayoucity.example.com", "700 Main St", "Houston", "TX", "77002"),
    ("Mesa Verde Apartments", "office@mesaverde.example.com", "315 Canyon Rd", "Santa Fe", "NM", "87501"),
    ("Pioneer Logistics Park", "", "2200 Freight Way", "Oklahoma City", "OK", "73102"),
    ("Harborview Hospital", "vendors@harborview.example.org", "88 Harbor View Dr", "Galveston", "TX", "77550"),
    ("Greenway Municipal Utility District", "admin@greenwaymud.example.gov", "16 Water Tower Rd", "Katy", "TX",
     "77494"),
    ("Oak Hollow Homeowners Association", "board@oakhollow.example.org", "5 Acorn Ct", "San Marcos", "TX", "78666"),
    ("Tri-County Development Partners", "contracts@tricounty.example.com", "1200 Commerce St", "Dallas", "TX",
     "75202"),
]


def seed_demo_holders(today) -> None:
    """A dozen holders linked to the first active demo customers (safe to run again)."""
    from app.enums import CustomerStatus

    customers = list(db.session.scalars(
        sa.select(Customer).where(Customer.status == CustomerStatus.ACTIVE).order_by(Customer.id).limit(3)))
    if not customers:
        return
    for index, (name, email, address, city, state, zip_code) in enumerate(DEMO_HOLDERS):
        holder, _ = get_or_create_holder(HolderValues(name=name, address=address, city=city, state=state,
                                                      zip_code=zip_code, email=email))
        targets = [customers[0]] if index < 8 else []
        if index % 3 == 0 and len(customers) > 1:
            targets.append(customers[1])
        if index >= 8 and len(customers) > 2:
            targets.append(customers[2])
        for customer in targets:
            exists = db.session.scalar(sa.select(CustomerHolder.id).filter_by(customer_id=customer.id,
                                                                              holder_id=holder.id))
            if exists is None:
                db.session.add(CustomerHolder(customer_id=customer.id, holder_id=holder.id,
                                              additional_insured=index % 2 == 0, waiver_of_subrogation=index % 4 == 0,
                                              primary_noncontributory=index % 5 == 0))
    db.session.flush()
