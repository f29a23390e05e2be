"""JSON API: the funnel and timing numbers (exemption links, COI time to issue, automation share, fees)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import jsonify, request
from pydantic import Field

from app import metrics as numbers
from app.api import bp
from app.api.auth import api_requires, error
from app.api.contract import UNAUTHORIZED, In, QueryDate, ValidationError_, ok, operation, parse, refused
from app.models.base import utcnow

MAX_DAYS = 3660


class MetricsQuery(In):
    from_: QueryDate = Field(None, alias="from", description="First day (default: 29 days ago)")
    to: QueryDate = Field(None, description="Last day (default: today, UTC)")
    messages = {"from": "from must be a date in the form YYYY-MM-DD.",
                "to": "to must be a date in the form YYYY-MM-DD."}


def parse_range(args) -> tuple[date | None, date | None, dict]:
    """``from`` / ``to`` (YYYY-MM-DD; default: the last 30 days), in order, at most ten years apart."""
    today = utcnow().date()
    asked, errors = parse(MetricsQuery, {k: args.get(k) for k in ("from", "to") if args.get(k) is not None})
    values = {}
    if not errors:
        values = {"from": asked.from_ or today - timedelta(days=29), "to": asked.to or today}
        if values["to"] < values["from"]:
            errors["to"] = "to must be on or after from."
        elif (values["to"] - values["from"]).days > MAX_DAYS:
            errors["to"] = "Ask for at most ten years at a time."
    return values.get("from"), values.get("to"), errors


@bp.route("/metrics")
@api_requires("view_dashboard")
@operation("GET", "/metrics", query=MetricsQuery,
           summary="Funnel and timing numbers: exemption requests sent -> opened -> completed -> approved (overall, "
                   "per send-to-many run, per state) with time to complete; COI requests -> issued, time to issue, "
                   "automatic vs staff, rejections by reason, WOS fees",
           replies={200: ok({"type": "object"}, "The numbers"), **UNAUTHORIZED,
                    403: refused("The role may not see the dashboard"),
                    422: refused("Bad or out-of-order dates, or over ten years", ValidationError_)})
def get_metrics():
    date_from, date_to, errors = parse_range(request.args)
    if errors:
        return error("Some parameters are not valid.", 422, fields=errors)
    return jsonify(numbers.metrics(date_from, date_to))
