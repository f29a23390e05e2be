"""Certificate holders and their links to customers (the customer's additional interests)."""

import re

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin


def holder_key(name: str, address: str, city: str = "", state: str = "", zip_code: str = "") -> str:
    """Normalised identity of a holder: case, punctuation and spacing do not make a new holder."""
    text = " ".join([name, address, city, state, (zip_code or "")[:5]]).lower()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()[:300]


class Holder(TimestampMixin, db.Model):
    __tablename__ = "holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    phone: Mapped[str] = mapped_column(sa.String(32), default="")
    address: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    state: Mapped[str] = mapped_column(sa.String(2), default="")
    zip_code: Mapped[str] = mapped_column(sa.String(10), default="")
    normalized_key: Mapped[str] = mapped_column(sa.String(300), unique=True)

    links: Mapped[list["CustomerHolder"]] = relationship(back_populates="holder", cascade="all, delete-orphan")

    @property
    def address_lines(self) -> list[str]:
        return [self.address, f"{self.city}, {self.state} {self.zip_code}".strip(", ")]


class CustomerHolder(TimestampMixin, db.Model):
    """A holder linked to a customer, with the endorsement flags of that link."""

    __tablename__ = "customer_holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    holder_id: Mapped[int] = mapped_column(sa.ForeignKey("holders.id"), index=True)
    additional_insured: Mapped[bool] = mapped_column(default=False)
    waiver_of_subrogation: Mapped[bool] = mapped_column(default=False)
    primary_noncontributory: Mapped[bool] = mapped_column(default=False)

    holder: Mapped[Holder] = relationship(back_populates="links")
    customer: Mapped["Customer"] = relationship()  # noqa: F821

    __table_args__ = (sa.UniqueConstraint("customer_id", "holder_id", name="uq_customer_holders_pair"),)
