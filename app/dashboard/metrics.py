"""Staff page: the funnel and timing numbers (the same figures as GET /api/v1/metrics)."""

from __future__ import annotations

from flask import request

from app import metrics as numbers
from app.api.metrics import parse_range
from app.auth.access import requires
from app.dashboard import bp
from app.htmx import render_page_or_partial


@bp.route("/metrics")
@requires("view_dashboard")
def metrics_page():
    date_from, date_to, errors = parse_range(request.args)
    result = numbers.metrics(date_from, date_to) if not errors else None
    return render_page_or_partial("dashboard/metrics.html", "dashboard/_metrics_part.html",
                                  status=422 if errors else 200, result=result, errors=errors, args=request.args)
