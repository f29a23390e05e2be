"""RQ jobs for certificates of insurance (ids in, idempotent)."""

from app.extensions import db
from app.jobs import job
from app.models.base import utcnow


@job
def auto_process_request(request_id: int):
    """Decide whether a new request is issued without staff, and if so issue and deliver it.

    Idempotent: a request that is no longer ``new``, or was already sent to the manual queue, is left
    alone, and the row lock (PostgreSQL) keeps two copies of this job from both issuing it.
    """
    from app.insurance.processing import auto_process, get_request

    req = get_request(request_id, for_update=db.engine.dialect.name == "postgresql")
    if req is None:
        return "missing"
    return auto_process(req, now=utcnow())

