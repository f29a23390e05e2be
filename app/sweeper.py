"""The periodic sweep: repairs whatever a dead worker, a lost schedule or a Redis outage left behind.

Each capability registers an idempotent function ``fn(now) -> int`` (how many items it touched).
The sweep runs them one by one, each in its own transaction, so one failure does not block the rest.

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


def register_sweep(name: str):
    def decorator(fn: Callable[[datetime], int]):
        SWEEPS[name] = fn
        return fn

    return decorator


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


@register_sweep("outbox")
def _sweep_outbox(now: datetime) -> int:
    from app.notify import requeue_stuck

    return requeue_stuck(now)


@register_sweep("upload_scratch")
def _sweep_upload_scratch(now: datetime) -> int:
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
