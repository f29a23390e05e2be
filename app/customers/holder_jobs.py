"""Jobs of the holders capability: check and write large CSV imports, generate certificates.

Each job takes a run id, reloads it, does nothing unless the run is in the state the job expects
(so a retry or a duplicate is harmless) and writes its progress on the run row as it goes.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from app.enums import ImportStatus
from app.extensions import db
from app.jobs import job
from app.models import GenerationRun, ImportRun
from app.models.base import utcnow

PROGRESS_EVERY = 0.5  # seconds between progress commits


def _progress_writer(model, run_id: int, column: str):
    """A progress(done, total) callback that commits the count on the run row, at most twice a second."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY and done < total:
            return
        last[0] = now
        db.session.execute(sa.update(model).where(model.id == run_id).values({column: done, "updated_at": utcnow()}))
        db.session.commit()

    return report


@job
def check_holder_import(run_id: int):
    from app.customers.imports import ImportFileError, check_import, transition

    run = db.session.get(ImportRun, run_id)
    if run is not None and not run.kind.is_holder_kind:  # a customer / policy import (e.g. re-enqueued by the sweep)
        from app.customers.record_import_jobs import check_run

        return check_run(run_id)
    if run is None or run.status is not ImportStatus.VALIDATING:
        return "nothing to do"
    try:
        check_import(run, now=utcnow(), progress=_progress_writer(ImportRun, run_id, "processed_rows"))
    except ImportFileError as exc:
        db.session.rollback()
        run = db.session.get(ImportRun, run_id)
        transition(run, ImportStatus.FAILED, actor=None, now=utcnow(), message=str(exc))
    return str(run.status)


@job
def apply_holder_import(run_id: int):
    from app.customers.imports import apply_import

    run = db.session.get(ImportRun, run_id)
    if run is not None and not run.kind.is_holder_kind:  # a customer / policy import (e.g. re-enqueued by the sweep)
        from app.customers.record_import_jobs import apply_run

        return apply_run(run_id)
    if run is None or run.status is not ImportStatus.IMPORTING:
        return "nothing to do"
    db.session.commit()

    def progress(done: int, total: int) -> None:
        db.session.commit()  # each chunk of rows is durable; a re-run skips what exists
    apply_import(run, now=utcnow(), progress=progress)
    return f"{run.created_count} created"


@job
def generate_certificates(run_id: int):
    """Count the attempt (committed first), then generate. What a retry cannot fix fails the run at once;
    any other error is noted and raised for RQ to retry, until the attempts are used up."""
    from app.customers import generation

    run = db.session.get(GenerationRun, run_id)
    if run is None or not run.is_working:
        return "nothing to do"
    if not generation.begin_attempt(run, now=utcnow()):
        return str(run.status)
    db.session.commit()
    try:
        generation.run_generation(run, now=utcnow(), progress=_progress_writer(GenerationRun, run_id, "done"))
    except Exception as exc:
        db.session.rollback()
        run = db.session.get(GenerationRun, run_id)
        if not generation.record_failure(run, exc, now=utcnow()):
            db.session.commit()
            raise
    return str(run.status)
