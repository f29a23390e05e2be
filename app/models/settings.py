import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class Setting(db.Model):
    """Admin-managed configuration values (fees, agency details), keyed by name, JSON valued."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    value: Mapped[dict | list | str | int | None] = mapped_column(sa.JSON)
