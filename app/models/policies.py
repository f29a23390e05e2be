"""Insurers, the policies on file for a customer, and their endorsements.

A policy's ``limits`` are whole dollars keyed by the names the certificate prints (``LIMIT_KEYS``); its
``coverage`` holds the type-of-insurance boxes of its line (``COVERAGE_FIELDS``). A renewal is a new
policy row (new number and term) whose ``supersedes_id`` points at the term it replaces; the old term
stays on file, readable.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import CoverageLine, EndorsementKind, PolicyStatus, enum_column
from app.extensions import db
from app.models.base import TimestampMixin

# Limit names per line, in print order (the certificate grid's keys; see app/insurance/certificate_data.py).
LIMIT_KEYS: dict[CoverageLine, tuple[str, ...]] = {
    CoverageLine.GENERAL_LIABILITY: ("each_occurrence", "damage_to_rented_premises", "medical_expense",
                                     "personal_adv_injury", "general_aggregate", "products_completed_ops"),
    CoverageLine.AUTOMOBILE: ("combined_single_limit", "bodily_injury_per_person", "bodily_injury_per_accident",
                              "property_damage"),
    CoverageLine.UMBRELLA: ("each_occurrence", "aggregate", "retention"),
    CoverageLine.WORKERS_COMP: ("el_each_accident", "el_disease_each_employee", "el_disease_policy_limit"),
    CoverageLine.OTHER: (),  # any limit name (lower-case words joined by "_")
}

LIMIT_LABELS: dict[str, str] = {
    "each_occurrence": "Each occurrence", "damage_to_rented_premises": "Damage to rented premises",
    "medical_expense": "Medical expense (any one person)", "personal_adv_injury": "Personal & advertising injury",
    "general_aggregate": "General aggregate", "products_completed_ops": "Products - completed operations aggregate",
    "combined_single_limit": "Combined single limit (each accident)",
    "bodily_injury_per_person": "Bodily injury (per person)",
    "bodily_injury_per_accident": "Bodily injury (per accident)", "property_damage": "Property damage (per accident)",
    "aggregate": "Aggregate", "retention": "Retention", "el_each_accident": "E.L. each accident",
    "el_disease_each_employee": "E.L. disease - each employee",
    "el_disease_policy_limit": "E.L. disease - policy limit",
}

# The type-of-insurance boxes per line: key -> allowed values (a tuple of choices, or bool for a tick box).
COVERAGE_FIELDS: dict[CoverageLine, dict[str, tuple[str, ...] | type]] = {
    CoverageLine.GENERAL_LIABILITY: {"form": ("occurrence", "claims_made"),
                                     "aggregate_basis": ("policy", "project", "location")},
    CoverageLine.AUTOMOBILE: {"any_auto": bool, "owned": bool, "hired": bool, "non_owned": bool, "scheduled": bool},
    CoverageLine.UMBRELLA: {"kind": ("umbrella", "excess"), "form": ("occurrence", "claims_made")},
    CoverageLine.WORKERS_COMP: {"per_statute": bool, "proprietor_excluded": bool},
    CoverageLine.OTHER: {},
}

COVERAGE_LABELS: dict[str, str] = {
    "form": "Form", "occurrence": "Occurrence", "claims_made": "Claims-made",
    "aggregate_basis": "General aggregate applies per", "policy": "Policy", "project": "Project",
    "location": "Location", "any_auto": "Any auto", "owned": "Owned autos", "hired": "Hired autos",
    "non_owned": "Non-owned autos", "scheduled": "Scheduled autos", "kind": "Umbrella or excess",
    "umbrella": "Umbrella", "excess": "Excess", "per_statute": "Per statute",
    "proprietor_excluded": "Proprietor / partners / officers excluded",
}


class Insurer(TimestampMixin, db.Model):
    """An insurance company, picked from this list when a policy is entered. ``naic`` is its 5-digit
    NAIC company code (unique; forms and the API require it, rows migrated from free text may lack it)."""

    __tablename__ = "insurers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    naic: Mapped[str | None] = mapped_column(sa.String(5), unique=True)

    @property
    def label(self) -> str:
        return f"{self.name} (NAIC {self.naic})" if self.naic else self.name


class Policy(TimestampMixin, db.Model):
    """A policy on file for a customer: the raw material of its certificates of insurance."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    line: Mapped[CoverageLine] = mapped_column(enum_column(CoverageLine))
    insurer_id: Mapped[int] = mapped_column(sa.ForeignKey("insurers.id"), index=True)
    policy_number: Mapped[str] = mapped_column(sa.String(60))
    effective_date: Mapped[date]
    expiry_date: Mapped[date]
    status: Mapped[PolicyStatus] = mapped_column(enum_column(PolicyStatus), default=PolicyStatus.ACTIVE,
                                                 server_default=PolicyStatus.ACTIVE.value)
    cancelled_on: Mapped[date | None]
    # Limit name -> amount in whole dollars, e.g. {"each_occurrence": 1000000} (names: LIMIT_KEYS).
    limits: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Type-of-insurance boxes, e.g. {"form": "occurrence", "aggregate_basis": "project"} (COVERAGE_FIELDS).
    coverage: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    # The earlier term this renewal replaces.
    supersedes_id: Mapped[int | None] = mapped_column(sa.ForeignKey("policies.id"), index=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    customer: Mapped[Customer] = relationship(back_populates="policies")  # noqa: F821
    # One-directional (and the renewals list read-only), so pointing a new, unsaved policy at an insurer or
    # at the term it renews never puts it into a collection of an object already in the session.
    insurer: Mapped[Insurer] = relationship()
    supersedes: Mapped[Policy | None] = relationship(remote_side=[id])
    renewals: Mapped[list[Policy]] = relationship(viewonly=True, order_by="Policy.id")
    endorsements: Mapped[list[Endorsement]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", order_by="Endorsement.id"
    )

    __table_args__ = (sa.UniqueConstraint("insurer_id", "line", "policy_number",
                                          name="uq_policies_insurer_line_number"),)
    __mapper_args__ = {"version_id_col": version}

    # The certificate code reads these two; the insurer list is the one place they are kept.
    @property
    def insurer_name(self) -> str:
        return self.insurer.name if self.insurer is not None else ""

    @property
    def naic_number(self) -> str:
        return (self.insurer.naic or "") if self.insurer is not None else ""

    @property
    def is_cancelled(self) -> bool:
        return self.status is PolicyStatus.CANCELLED

    @property
    def superseded_by(self) -> Policy | None:
        return self.renewals[0] if self.renewals else None

    @property
    def ends_on(self) -> date:
        """The last day of cover: the expiry date, or the day before a cancellation took effect."""
        if self.is_cancelled and self.cancelled_on is not None and self.cancelled_on <= self.expiry_date:
            return date.fromordinal(self.cancelled_on.toordinal() - 1)
        return self.expiry_date

    def is_in_force(self, on: date) -> bool:
        """In its term on ``on``, not cancelled by then (a cancellation takes effect on its date) and not
        yet replaced: on the day a renewal term starts (usually the old expiry date) the renewal is the
        one in force."""
        if not (self.effective_date <= on <= self.expiry_date):
            return False
        if self.is_cancelled and self.cancelled_on is not None and on >= self.cancelled_on:
            return False
        return not any(r.effective_date <= on for r in self.renewals)

    def endorsement_for(self, kind: EndorsementKind | str, holder_name: str | None = None) -> Endorsement | None:
        """The endorsement of ``kind`` that covers this holder: one naming it (case and spacing ignored)
        first, else a blanket one (no holder named); None when the policy has neither."""
        kind = EndorsementKind(kind)
        wanted = _holder_key(holder_name)
        blanket = None
        for e in self.endorsements:
            if e.kind is not kind:
                continue
            if e.is_blanket:
                blanket = blanket or e
            elif wanted and _holder_key(e.holder_name) == wanted:
                return e
        return blanket

    def limit_rows(self) -> list[tuple[str, int]]:
        """(label, amount) for the limits on file, known names in print order first."""
        known = LIMIT_KEYS.get(self.line, ())
        values = self.limits or {}
        rows = [(LIMIT_LABELS.get(k, k), values[k]) for k in known if values.get(k) is not None]
        rows += [(LIMIT_LABELS.get(k, k.replace("_", " ").capitalize()), v) for k, v in values.items()
                 if k not in known and v is not None]
        return rows

    def coverage_rows(self) -> list[str]:
        """The coverage boxes on file as words, e.g. ["Form: Occurrence", "Hired autos"]."""
        out = []
        for key, allowed in COVERAGE_FIELDS.get(self.line, {}).items():
            value = (self.coverage or {}).get(key)
            if allowed is bool:
                if value:
                    out.append(COVERAGE_LABELS[key])
            elif value:
                out.append(f"{COVERAGE_LABELS[key]}: {COVERAGE_LABELS.get(value, value)}")
        return out


def _holder_key(name: str | None) -> str:
    return " ".join((name or "").lower().split())


class Endorsement(TimestampMixin, db.Model):
    """An endorsement on a policy: blanket (``holder_name`` is None) or naming one holder."""

    __tablename__ = "endorsements"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(sa.ForeignKey("policies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[EndorsementKind] = mapped_column(enum_column(EndorsementKind))
    form_number: Mapped[str] = mapped_column(sa.String(40), default="")
    holder_name: Mapped[str | None] = mapped_column(sa.String(200))

    policy: Mapped[Policy] = relationship(back_populates="endorsements")

    @property
    def is_blanket(self) -> bool:
        return not (self.holder_name or "").strip()

    @property
    def label(self) -> str:
        who = "blanket" if self.is_blanket else f"for {self.holder_name}"
        form = f" ({self.form_number})" if self.form_number else ""
        return f"{self.kind.label}{form}, {who}"
