"""The periodic sweep: repairs whatever a dead worker, a lost schedule or a Redis outage left behind.

Each step is an idempotent function ``fn(now) -> int`` (how many items it touched), listed by name in
``STEPS`` (in the order they run) and put in the registry by ``create_app`` (``install``), not by importing
a feature package. The sweep runs them one by one, each in its own transaction, so one failure does not
block the rest.

The time of the last completed sweep is kept in the database (``settings``: it survives a Redis
restart), shown on the admin outbox page and checked by ``flask check-services``. A Redis lock keeps
two processes from sweeping at the same moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import current_app

from app.extensions import db

log = logging.getLogger(__name__)

SWEEPS: dict[str, Callable[[datetime], int]] = {}

# name -> "module:function", in the order the sweep runs them (webhook deliveries last: the steps before
# emit events).
STEPS = {
    "outbox": "app.sweeper:sweep_outbox",
    "upload_scratch": "app.sweeper:sweep_upload_scratch",
    "coi_auto_process": "app.insurance.processing:requeue_undecided",
    "coi_issue_requests": "app.insurance.processing:requeue_issue_requests",
    "exemption_links_expire": "app.exemptions.services:expire_overdue_links",
    "exemption_reminders": "app.exemptions.services:send_due_reminders",
    "exemption_certificates_expire": "app.exemptions.services:expire_certificates",
    "exemption_renewals": "app.exemptions.services:send_renewals",
    "exemption_expiring_soon": "app.exemptions.services:mark_expiring_soon",
    "audit_packs_resume": "app.exemptions.audit:resume_audit_packs",
    "generated-files": "app.customers.generation:remove_expired_files",
    "stuck-holder-jobs": "app.customers.generation:requeue_stuck_runs",
    "stuck-reissue-runs": "app.insurance.reissue_runs:requeue_stuck_runs",
    "webhook_deliveries": "app.webhooks:resend_lost_deliveries",
}


def install(steps: dict[str, str] = STEPS) -> dict[str, Callable[[datetime], int]]:
    """Fill the registry with exactly ``steps`` (called by ``create_app``; calling it again is harmless)."""
    from importlib import import_module

    found = {}
    for name, target in steps.items():
        module, _, attr = target.partition(":")
        found[name] = getattr(import_module(module), attr)
    SWEEPS.clear()
    SWEEPS.update(found)
    return SWEEPS


LAST_SWEEP_KEY = "sweep.last_run"


def run_sweep(now: datetime) -> dict[str, int]:
    results: dict[str, int] = {}
    for name, fn in SWEEPS.items():
        try:
            results[name] = fn(now)
            db.session.commit()
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("sweep step %s failed", name)
            results[name] = -1
    _record_sweep(datetime.now(UTC))
    return results


def run_sweep_once(now: datetime) -> dict[str, int] | None:
    """``run_sweep`` unless another process holds the sweep lock (then None). Without Redis the
    sweep runs anyway: every step is idempotent, the lock only saves doing the work twice."""
    from app.extensions import jobs

    if jobs.mode != "rq":
        return run_sweep(now)
    key = jobs.key("sweep-lock")
    try:
        if not jobs.redis.set(key, "1", nx=True, ex=600):
            return None
    except Exception:  # noqa: BLE001
        log.exception("sweep lock unavailable; sweeping without it")
        return run_sweep(now)
    try:
        return run_sweep(now)
    finally:
        try:
            jobs.redis.delete(key)
        except Exception:  # noqa: BLE001
            log.exception("could not release the sweep lock")


def _record_sweep(at: datetime) -> None:
    from app.models import Setting

    try:
        row = db.session.get(Setting, LAST_SWEEP_KEY)
        if row is None:
            db.session.add(Setting(key=LAST_SWEEP_KEY, value=at.isoformat()))
        else:
            row.value = at.isoformat()
        db.session.commit()
    except Exception:  # noqa: BLE001 - two sweeps recording at once: either time will do
        db.session.rollback()
        log.exception("could not record the sweep time")


def last_sweep_at() -> datetime | None:
    from app.models import Setting

    row = db.session.get(Setting, LAST_SWEEP_KEY)
    if row is None or not isinstance(row.value, str):
        return None
    try:
        return datetime.fromisoformat(row.value)
    except ValueError:
        return None


def sweep_health(now: datetime | None = None) -> tuple[bool, str]:
    """(healthy, sentence) about the last sweep: unhealthy when none ran in three intervals."""
    now = now or datetime.now(UTC)
    interval = current_app.config["SWEEP_INTERVAL_SECONDS"]
    last = last_sweep_at()
    if last is None:
        return False, "no sweep has run yet"
    age = int((now - last).total_seconds())
    sentence = f"last sweep {last:%Y-%m-%d %H:%M:%S} UTC ({age} s ago; one every {interval} s)"
    return now - last <= timedelta(seconds=3 * interval), sentence


def sweep_outbox(now: datetime) -> int:
    from app.notify import requeue_stuck

    return requeue_stuck(now)


def sweep_upload_scratch(now: datetime) -> int:
    """Delete documents kept between posts of a link form (``portal/links.py``) after an hour."""
    from pathlib import Path

    scratch = Path(current_app.config["UPLOAD_DIR"]) / "scratch"
    if not scratch.is_dir():
        return 0
    cutoff = (now - timedelta(hours=1)).timestamp()
    removed = 0
    for path in scratch.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
