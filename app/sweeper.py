"""The periodic sweep: repairs whatever a dead worker, a lost schedule or a Redis outage left behind.

Each capability registers an idempotent function ``fn(now) -> int`` (how many items it touched).
The sweep runs them one by one, each in its own transaction, so one failure does not block the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from app.extensions import db

log = logging.getLogger(__name__)

SWEEPS: dict[str, Callable[[datetime], int]] = {}


def register_sweep(name: str):
    def decorator(fn: Callable[[datetime], int]):
        SWEEPS[name] = fn
        return fn

    return decorator


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
    return results


@register_sweep("outbox")
def _sweep_outbox(now: datetime) -> int:
    from app.notify import requeue_stuck

    return requeue_stuck(now)
