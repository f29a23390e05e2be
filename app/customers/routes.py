import sqlalchemy as sa
from flask import abort, render_template, request
from sqlalchemy.orm import joinedload

from app import pagination
from app.auth.access import requires
from app.customers import bp
from app.extensions import db
from app.models import Customer, Program
from app.validation import parse_id, parse_page


def get_customer_or_404(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.route("/")
@requires("view_dashboard")
def index():
    q = request.args.get("q", "").replace("\x00", "").strip()[:200]
    stmt = sa.select(Customer)
    if q:
        clauses = [Customer.name.ilike(f"%{q}%"), Customer.external_id == q]
        if (customer_id := parse_id(q)) is not None:
            clauses.append(Customer.id == customer_id)
        stmt = stmt.where(sa.or_(*clauses))
    # A seek page by (name, id) over ix_customers_name_id; the program name in the same statement.
    customers = pagination.seek_page(
        stmt.options(joinedload(Customer.program).load_only(Program.name)), (Customer.name, Customer.id),
        lambda c: (c.name, c.id), descending=False, after=request.args.get("after"),
        before=request.args.get("before"), page=parse_page(request.args.get("page")), per_page=25,
        count_stmt=stmt)
    return render_template("customers/index.html", customers=customers, q=q)


@bp.route("/<int:customer_id>")
@requires("view_dashboard")
def detail(customer_id: int):
    customer = get_customer_or_404(customer_id)
    from app.activity import customer_timeline

    return render_template("customers/detail.html", customer=customer, activities=customer_timeline(customer.id))
