"""Configuration: WOS and card convenience fees, and the WOS fee report."""

from flask import Response, flash, redirect, request, url_for
from flask_login import current_user

from app.admin import bp
from app.auth.access import requires
from app.extensions import db
from app.htmx import hx_trigger, render_page_or_partial, wants_partial
from app.insurance.fees import get_fees, save_fees, wos_fee_csv, wos_fee_report
from app.insurance.intake_errors import RequestInvalid
from app.models.base import utcnow


def _fees_page(status: int = 200, **extra):
    fees = get_fees()
    values = extra.pop("values", None) or {"wos_fee": fees.wos_fee, "card_fee_percent": fees.card_fee_percent}
    return render_page_or_partial("admin/fees.html", "admin/_fees_part.html", status=status, fees=fees,
                                  values=values, errors=extra.pop("errors", {}), **extra)


@bp.route("/fees", methods=["GET", "POST"])
@requires("configure")
def fees():
    if request.method == "GET":
        return _fees_page()
    values = {"wos_fee": request.form.get("wos_fee", ""), "card_fee_percent": request.form.get("card_fee_percent", "")}
    try:
        saved = save_fees(**values, actor=current_user, now=utcnow())
    except RequestInvalid as exc:
        return _fees_page(422, values=values, errors=exc.errors)
    db.session.commit()
    message = f"Fees saved: WOS fee ${saved.wos_fee}, card convenience fee {saved.card_fee_percent}%."
    if wants_partial():
        return hx_trigger(_fees_page(saved_message=message), "fees-changed", toast=message)
    flash(message, "success")
    return redirect(url_for("admin.fees"), code=303)


def _year_arg() -> int | None:
    from app.validation import parse_int

    return parse_int(request.args.get("year"), low=2000, high=2200)


@bp.route("/fees/report")
@requires("configure")
def fee_report():
    year = _year_arg()
    report = wos_fee_report(year=year)
    return render_page_or_partial("admin/fees_report.html", "admin/_fees_report_part.html", report=report, year=year)


@bp.route("/fees/report.csv")
@requires("configure")
def fee_report_csv():
    year = _year_arg()
    body = wos_fee_csv(wos_fee_report(year=year))
    name = f"wos-fees-{year or 'all'}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
