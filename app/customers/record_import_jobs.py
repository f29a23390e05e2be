"""Jobs of the customer / policy CSV import: check a large file, write a confirmed one.

Each takes a run id, reloads the run and does nothing unless it is in the state the job expects, so a
retry or a duplicate is harmless; progress is written on the run row as it goes. The import runs share
their table with the holder imports, whose jobs (the ones the repair sweep re-enqueues) hand customer and
policy runs to ``check_run`` / ``apply_run`` here.
"""

from __future__ import annotations

from app.enums import ImportStatus
from app.extensions import db
from app.jobs import job
from app.models import ImportRun, User
from app.models.base import utcnow


def check_run(run_id: int) -> str:
    from app.customers.holder_jobs import _progress_writer
    from app.customers.imports import ImportFileError
    from app.customers.record_imports import check_import, transition

    run = db.session.get(ImportRun, run_id)
    if run is None or run.status is not ImportStatus.VALIDATING:
        return "nothing to do"
    try:
        check_import(run, now=utcnow(), progress=_progress_writer(ImportRun, run_id, "processed_rows"))
    except ImportFileError as exc:
        db.session.rollback()
        run = db.session.get(ImportRun, run_id)
        transition(run, ImportStatus.FAILED, actor=None, now=utcnow(), message=str(exc))
    return str(run.status)


def apply_run(run_id: int) -> str:
    from app.customers.record_imports import apply_import

    run = db.session.get(ImportRun, run_id)
    if run is None or run.status is not ImportStatus.IMPORTING:
        return "nothing to do"
    actor = db.session.get(User, run.created_by_id) if run.created_by_id else None

    def progress(done: int, total: int) -> None:
        db.session.commit()  # each chunk of rows is durable; a re-run finds them on file and skips them
    apply_import(run, actor=actor, now=utcnow(), progress=progress)
    return f"{run.created_count} created, {run.updated_count} updated"


@job
def check_record_import(run_id: int):
    return check_run(run_id)


@job
def apply_record_import(run_id: int):
    return apply_run(run_id)
