"""RQ jobs for certificates of insurance (ids in, idempotent)."""

from app.jobs import job


@job
def auto_process_request(request_id: int):
    """Decide whether a new request is issued without staff, and if so issue and deliver it.

    Filled in by the staff-queue capability; until then every request waits in the manual queue.
    """
    return "manual"
