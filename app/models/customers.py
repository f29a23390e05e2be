from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import CoverageLine, CustomerStatus, PaymentMethod, enum_column
from app.extensions import db
from app.models.base import TimestampMixin


class Program(TimestampMixin, db.Model):
    """An insurance program a customer belongs to; decides whether certificates may be automated."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    automation_enabled: Mapped[bool] = mapped_column(default=False)
    is_peo: Mapped[bool] = mapped_column(default=False)

    customers: Mapped[list["Customer"]] = relationship(back_populates="program")


class Customer(TimestampMixin, db.Model):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    status: Mapped[CustomerStatus] = mapped_column(enum_column(CustomerStatus), default=CustomerStatus.ACTIVE)
    payment_method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod), default=PaymentMethod.ACH)
    # Reference to the card on file at the payment gateway (never a full card number).
    card_token: Mapped[str | None] = mapped_column(sa.String(64))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    program_id: Mapped[int | None] = mapped_column(sa.ForeignKey("programs.id"), index=True)
    contact_name: Mapped[str] = mapped_column(sa.String(120), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(32), default="")
    address: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    state: Mapped[str] = mapped_column(sa.String(2), default="")
    zip_code: Mapped[str] = mapped_column(sa.String(10), default="")

    program: Mapped[Program | None] = relationship(back_populates="customers")
    users: Mapped[list["User"]] = relationship(back_populates="customer")  # noqa: F821
    policies: Mapped[list["Policy"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Policy.id"
    )

    @property
    def automation_enabled(self) -> bool:
        return bool(self.program and self.program.automation_enabled)

    @property
    def is_active(self) -> bool:
        return self.status is CustomerStatus.ACTIVE

    @property
    def mailing_address(self) -> str:
        return f"{self.address}, {self.city}, {self.state} {self.zip_code}".strip(", ")


class Policy(TimestampMixin, db.Model):
    """A policy on file for a customer: the raw material of its certificates of insurance."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    line: Mapped[CoverageLine] = mapped_column(enum_column(CoverageLine))
    insurer_name: Mapped[str] = mapped_column(sa.String(200))
    naic_number: Mapped[str] = mapped_column(sa.String(10), default="")
    policy_number: Mapped[str] = mapped_column(sa.String(60))
    effective_date: Mapped[date]
    expiry_date: Mapped[date]
    # Limit name -> amount in whole dollars, e.g. {"each_occurrence": 1000000}.
    limits: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    description: Mapped[str] = mapped_column(sa.String(200), default="")

    customer: Mapped[Customer] = relationship(back_populates="policies")

    def is_in_force(self, on: date) -> bool:
        return self.effective_date <= on <= self.expiry_date
