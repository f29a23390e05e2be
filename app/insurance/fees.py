"""COI fees: the WOS fee and the card convenience fee (admin settings), what a request would cost
(``quote``), and the WOS fee report with its CSV.

Plain service functions: explicit ``actor`` and ``now``; they add and flush rows, **the caller commits**.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import sqlalchemy as sa

from app import activity
from app.csvio import csv_safe
from app.enums import PaymentStatus, RequestType
from app.extensions import db
from app.insurance.intake_errors import RequestInvalid
from app.models import CertificateRequest, Customer, Payment, Setting, User

# -- fees -----------------------------------------------------------------------------------------------

FEES_KEY = "fees"
DEFAULT_WOS_FEE_CENTS = 2500
DEFAULT_CARD_FEE_BPS = 300  # 3.00 %


@dataclass(frozen=True)
class Fees:
    wos_fee_cents: int = DEFAULT_WOS_FEE_CENTS
    card_fee_bps: int = DEFAULT_CARD_FEE_BPS  # basis points: 300 = 3.00 %

    def convenience_cents(self) -> int:
        return int((Decimal(self.wos_fee_cents) * self.card_fee_bps / Decimal(10000)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def wos_fee(self) -> str:
        return f"{self.wos_fee_cents / 100:.2f}"

    @property
    def card_fee_percent(self) -> str:
        return f"{self.card_fee_bps / 100:.2f}"


def get_fees() -> Fees:
    setting = db.session.get(Setting, FEES_KEY)
    value = setting.value if setting is not None and isinstance(setting.value, dict) else {}
    try:
        return Fees(wos_fee_cents=int(value.get("wos_fee_cents", DEFAULT_WOS_FEE_CENTS)),
                    card_fee_bps=int(value.get("card_fee_bps", DEFAULT_CARD_FEE_BPS)))
    except (TypeError, ValueError):
        return Fees()


def save_fees(*, wos_fee: str, card_fee_percent: str, actor: User, now: datetime) -> Fees:
    """Admins set the WOS fee (dollars) and the card convenience fee (percent of the WOS fee)."""
    errors = {}
    wos_cents = card_bps = None
    try:
        amount = Decimal(str(wos_fee or "").strip().lstrip("$").replace(",", ""))
        if not amount.is_finite() or amount < 0 or amount > 10000 or amount != amount.quantize(Decimal("0.01")):
            raise InvalidOperation
        wos_cents = int(amount * 100)
    except (InvalidOperation, ValueError):
        errors["wos_fee"] = "Enter the WOS fee in dollars, e.g. 25.00 (0 to 10,000, at most 2 decimals)."
    try:
        pct = Decimal(str(card_fee_percent or "").strip().rstrip("%"))
        if not pct.is_finite() or pct < 0 or pct > 20 or pct != pct.quantize(Decimal("0.01")):
            raise InvalidOperation
        card_bps = int(pct * 100)
    except (InvalidOperation, ValueError):
        errors["card_fee_percent"] = "Enter the card convenience fee as a percent, e.g. 3 or 2.75 (0 to 20)."
    if errors:
        raise RequestInvalid(errors)
    old = get_fees()
    fees = Fees(wos_fee_cents=wos_cents, card_fee_bps=card_bps)
    setting = db.session.get(Setting, FEES_KEY)
    value = {"wos_fee_cents": fees.wos_fee_cents, "card_fee_bps": fees.card_fee_bps}
    if setting is None:
        db.session.add(Setting(key=FEES_KEY, value=value))
    else:
        setting.value = value
    activity.record("settings", 0, "fees_changed", actor=actor, now=now,
                    message=f"WOS fee ${old.wos_fee} -> ${fees.wos_fee}; card convenience fee "
                            f"{old.card_fee_percent}% -> {fees.card_fee_percent}%.")
    db.session.flush()
    return fees


def quote(customer: Customer, kind: RequestType) -> dict:
    """What submitting would cost this customer: for the form's notice and the API."""
    if kind is not RequestType.COI_WOS:
        return {"fee_cents": 0, "convenience_cents": 0, "total_cents": 0, "charged_now": False}
    fees = get_fees()
    card = customer.payment_method.charged_up_front
    conv = fees.convenience_cents() if card else 0
    return {"fee_cents": fees.wos_fee_cents, "convenience_cents": conv, "total_cents": fees.wos_fee_cents + conv,
            "charged_now": card}


# -- the WOS fee report --------------------------------------------------------------------------------------

@dataclass
class FeeRow:
    month: str  # "YYYY-MM"
    customer_id: int
    customer_name: str
    requests: int = 0
    wos_fees_cents: int = 0
    convenience_cents: int = 0
    card_charged_cents: int = 0
    billed_to_account_cents: int = 0
    refunded_cents: int = 0

    @property
    def net_cents(self) -> int:
        """What was kept: charged to cards minus refunds, plus fees billed to accounts."""
        return self.card_charged_cents - self.refunded_cents + self.billed_to_account_cents


def wos_fee_report(year: int | None = None, customer_id: int | None = None) -> dict:
    """WOS fees per month and per customer (UTC months), with month and customer subtotals.

    Counts every COI-with-WOS request that carries a fee: card / Amex ones charged up front
    (with their convenience fee) and ACH / wire ones billed with the account.

    At a desk's size (100,000 requests, 10,000 customers) it costs three statements whatever the
    size: the years that have fees, the year's fee-carrying requests (only the columns summed), and
    their approved payments in one ``IN (subquery)``; the subtotals are summed in one pass each.
    """
    wos = [CertificateRequest.type == RequestType.COI_WOS, CertificateRequest.fee_cents > 0]
    if customer_id is not None:
        wos.append(CertificateRequest.customer_id == customer_id)
    created = CertificateRequest.created_at
    if db.engine.dialect.name == "postgresql":  # UTC years, whatever the session's time zone
        created = sa.func.timezone("UTC", created)
    year_of = sa.extract("year", created)
    years = {int(y) for y in db.session.scalars(sa.select(year_of).where(*wos).distinct()) if y is not None}
    if year is not None:
        wos += [CertificateRequest.created_at >= datetime(year, 1, 1, tzinfo=UTC),
                CertificateRequest.created_at < datetime(year + 1, 1, 1, tzinfo=UTC)]
    rows = db.session.execute(
        sa.select(CertificateRequest.id, CertificateRequest.created_at, CertificateRequest.fee_cents,
                  CertificateRequest.customer_id, Customer.name)
        .join(Customer, Customer.id == CertificateRequest.customer_id).where(*wos)).all()
    paid: dict[int, tuple[int, int, int]] = {}
    for p in db.session.execute(sa.select(Payment.request_id, Payment.convenience_fee_cents, Payment.amount_cents,
                                          Payment.refunded_cents)
                                .where(Payment.status == PaymentStatus.APPROVED,
                                       Payment.request_id.in_(sa.select(CertificateRequest.id).where(*wos)))
                                .order_by(Payment.id)):
        paid[p.request_id] = (p.convenience_fee_cents, p.amount_cents, p.refunded_cents or 0)
    table: dict[tuple[str, int], FeeRow] = {}
    for r in rows:
        month = r.created_at.strftime("%Y-%m")
        row = table.setdefault((month, r.customer_id), FeeRow(month, r.customer_id, r.name))
        row.requests += 1
        row.wos_fees_cents += r.fee_cents
        if r.id in paid:
            row.convenience_cents += paid[r.id][0]
            row.card_charged_cents += paid[r.id][1]
            row.refunded_cents += paid[r.id][2]
        else:
            row.billed_to_account_cents += r.fee_cents
    detail = sorted(table.values(), key=lambda x: (x.month, x.customer_name.lower(), x.customer_id))

    def add(out: FeeRow, x: FeeRow) -> FeeRow:
        out.requests += x.requests
        out.wos_fees_cents += x.wos_fees_cents
        out.convenience_cents += x.convenience_cents
        out.card_charged_cents += x.card_charged_cents
        out.billed_to_account_cents += x.billed_to_account_cents
        out.refunded_cents += x.refunded_cents
        return out

    by_month: dict[str, FeeRow] = {}
    by_customer: dict[int, FeeRow] = {}
    grand = FeeRow("", 0, "")
    for x in detail:
        add(by_month.setdefault(x.month, FeeRow(x.month, 0, "")), x)
        add(by_customer.setdefault(x.customer_id, FeeRow("", x.customer_id, x.customer_name)), x)
        add(grand, x)
    months = [by_month[m] for m in sorted(by_month)]
    customers = sorted(by_customer.values(), key=lambda x: (x.customer_name.lower(), x.customer_id))
    return {"rows": detail, "months": months, "customers": customers, "total": grand,
            "years": sorted(years, reverse=True), "year": year}


def wos_fee_csv(report: dict) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "customer_id", "customer", "requests", "wos_fees", "convenience_fees",
                     "card_charged", "billed_to_account", "refunded", "net"])

    def dollars(cents: int) -> str:
        return f"{cents / 100:.2f}"

    for r in report["rows"]:
        writer.writerow([r.month, r.customer_id, csv_safe(r.customer_name), r.requests, dollars(r.wos_fees_cents),
                         dollars(r.convenience_cents), dollars(r.card_charged_cents),
                         dollars(r.billed_to_account_cents), dollars(r.refunded_cents), dollars(r.net_cents)])
    t = report["total"]
    writer.writerow(["total", "", "", t.requests, dollars(t.wos_fees_cents), dollars(t.convenience_cents),
                     dollars(t.card_charged_cents), dollars(t.billed_to_account_cents), dollars(t.refunded_cents),
                     dollars(t.net_cents)])
    return out.getvalue()
