"""Admin: the state exemption rules table (from the repository, with sources) and admins' overrides."""

from __future__ import annotations

from flask import abort, flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.auth.access import requires
from app.enums import ExemptionReason
from app.exemptions import rules
from app.extensions import db
from app.htmx import hx_redirect, render_page_or_partial
from app.models.base import utcnow

FLAGS = (("sales_tax", "Has a state sales tax"), ("accepts_mtc", "Accepts the multistate uniform (MTC) form"),
         ("accepts_sst", "Accepts the streamlined (SST) certificate"),
         ("state_id_required", "Asks for the purchaser's state ID number"))


@bp.route("/exemption-rules")
@requires("configure")
def exemption_rules():
    table = rules.rules_table()
    return render_page_or_partial("admin/exemption_rules.html", "admin/_exemption_rules_part.html",
                                  rules=[table[s] for s in sorted(table)], version=rules.repository_table()["version"])


def _changes_from_form(rule: rules.StateRule, form) -> dict:
    """Only what differs from the rule in force, so an override records exactly what the admin changed."""
    changes: dict = {}
    for key, _label in FLAGS:
        wanted = form.get(key) == "on"
        if wanted != getattr(rule, key):
            changes[key] = wanted
    reasons = [r for r in form.getlist("reasons")]
    if sorted(reasons) != sorted(rule.reasons):
        changes["reasons"] = reasons
    return changes


@bp.route("/exemption-rules/<string:state>", methods=["GET", "POST"])
@requires("configure")
def exemption_rule(state: str):
    rule = rules.rule_for(state.upper()) if len(state) == 2 else None
    if rule is None:
        abort(404)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            rules.override_rule(rule.state, _changes_from_form(rule, request.form), note=request.form.get("note", ""),
                                actor=current_user, now=utcnow())
        except rules.RuleError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(f"{rule.state}'s rules changed; new submissions are checked against them.", "success")
            return hx_redirect(url_for("admin.exemption_rule", state=rule.state))
    return render_page_or_partial("admin/exemption_rule.html", "admin/_exemption_rule_part.html",
                                  status=422 if errors else 200, rule=rule, errors=errors, flags=FLAGS,
                                  reasons=list(ExemptionReason), history=rules.override_history(rule.state),
                                  form=request.form if errors else None)
