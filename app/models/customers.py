import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import CustomerStatus, Language, PaymentMethod, enum_column
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
    """An insured business. ``external_id`` is the business's own customer number: the key that imports
    and integrations use (unique; rows from before it existed may have none, forms and the API require it)."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    status: Mapped[CustomerStatus] = mapped_column(enum_column(CustomerStatus), default=CustomerStatus.ACTIVE)
    # Why the customer is inactive / suspended (shown in the timeline and in every refusal).
    status_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    language: Mapped[Language] = mapped_column(enum_column(Language, length=8), default=Language.EN,
                                               server_default=Language.EN.value)
    payment_method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod), default=PaymentMethod.ACH)
    # The card on file at the payment gateway: its token, brand, last four digits and expiry; never the number.
    card_token: Mapped[str | None] = mapped_column(sa.String(64))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_exp_month: Mapped[int | None]
    card_exp_year: Mapped[int | None]
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
    policies: Mapped[list["Policy"]] = relationship(  # noqa: F821
        back_populates="customer", cascade="all, delete-orphan", order_by="Policy.id"
    )

    # The staff customer list: by name, a seek page by (name, id).
    __table_args__ = (sa.Index("ix_customers_name_id", "name", "id"),)

    @property
    def automation_enabled(self) -> bool:
        return bool(self.program and self.program.automation_enabled)

    @property
    def is_active(self) -> bool:
        return self.status is CustomerStatus.ACTIVE

    @property
    def mailing_address(self) -> str:
        return f"{self.address}, {self.city}, {self.state} {self.zip_code}".strip(", ")
