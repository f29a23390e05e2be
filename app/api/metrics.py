"""JSON API: the funnel and timing numbers (exemption links, COI time to issue, automation share, fees)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import jsonify, request

from app import metrics as numbers
from app.api import OPENAPI_PATHS, bp
from app.api.auth import api_requires, error
from app.models.base import utcnow

MAX_DAYS = 3660


def parse_range(args) -> tuple[date | None, date | None, dict]:
    """``from`` / ``to`` (YYYY-MM-DD; default: the last 30 days), in order, at most ten years apart."""
    errors: dict[str, str] = {}
    today = utcnow().date()
    values = {}
    for key, default in (("from", today - timedelta(days=29)), ("to", today)):
        text = (args.get(key) or "").strip()
        try:
            values[key] = date.fromisoformat(text) if text else default
        except ValueError:
            errors[key] = f"{key} must be a date in the form YYYY-MM-DD."
    if not errors:
        if values["to"] < values["from"]:
            errors["to"] = "to must be on or after from."
        elif (values["to"] - values["from"]).days > MAX_DAYS:
            errors["to"] = "Ask for at most ten years at a time."
    return values.get("from"), values.get("to"), errors


@bp.route("/metrics")
@api_requires("view_dashboard")
def get_metrics():
    date_from, date_to, errors = parse_range(request.args)
    if errors:
        return error("Some parameters are not valid.", 422, fields=errors)
    return jsonify(numbers.metrics(date_from, date_to))


OPENAPI_PATHS["/api/v1/metrics"] = {"get": {
    "summary": "Funnel and timing numbers: exemption requests sent -> opened -> completed -> approved (overall, per "
               "send-to-many run, per state) with time to complete; COI requests -> issued, time to issue, "
               "automatic vs staff, rejections by reason, WOS fees",
    "security": [{"bearer": []}],
    "parameters": [
        {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
         "description": "First day (default: 29 days ago)"},
        {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
         "description": "Last day (default: today, UTC)"}],
    "responses": {"200": {"description": "The numbers"},
                  "401": {"description": "Missing or invalid token"},
                  "422": {"description": "Bad or out-of-order dates, or over ten years"}},
}}
