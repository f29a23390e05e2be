"""The sweep's repair steps are put in its registry by ``create_app``, explicitly and in order, not by
importing a feature package: after ``create_app`` the registry holds exactly these steps, and a sweep
runs each of them once."""

from datetime import UTC, datetime

from app import sweeper
from app.customers import generation
from app.exemptions import audit, services
from app.insurance import processing, reissue_runs
from app.webhooks import resend_lost_deliveries

EXPECTED = {
    "outbox": sweeper.sweep_outbox,
    "upload_scratch": sweeper.sweep_upload_scratch,
    "coi_auto_process": processing.requeue_undecided,
    "coi_issue_requests": processing.requeue_issue_requests,
    "exemption_links_expire": services.expire_overdue_links,
    "exemption_reminders": services.send_due_reminders,
    "exemption_certificates_expire": services.expire_certificates,
    "exemption_renewals": services.send_renewals,
    "exemption_expiring_soon": services.mark_expiring_soon,
    "audit_packs_resume": audit.resume_audit_packs,
    "generated-files": generation.remove_expired_files,
    "stuck-holder-jobs": generation.requeue_stuck_runs,
    "stuck-reissue-runs": reissue_runs.requeue_stuck_runs,
    "webhook_deliveries": resend_lost_deliveries,
}


def test_create_app_installs_exactly_the_sweep_steps_in_order(app):
    assert list(sweeper.SWEEPS) == list(EXPECTED)
    assert sweeper.SWEEPS == EXPECTED


def test_the_registry_is_what_install_puts_there(app):
    sweeper.SWEEPS.clear()
    assert sweeper.SWEEPS == {}  # nothing else fills it (no import side effect)
    assert sweeper.install() == EXPECTED


def test_a_sweep_runs_every_step_once_and_reports_each(app):
    results = sweeper.run_sweep(datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert list(results) == list(EXPECTED)
    assert all(count == 0 for count in results.values()), results  # an empty database: nothing to repair
