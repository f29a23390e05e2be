"""The public link page under races: a double-submitted form and simultaneous "opened" calls
answer the pages a person expects (never a 500) and record one submission / one opening."""

import io
import threading

import sqlalchemy as sa

from app.enums import ExemptionRequestStatus as RS
from app.extensions import db
from app.models import Activity, ExemptionCertificate, ExemptionRequest
from tests.paths import EXEMPTION_FORMS

DOC = (EXEMPTION_FORMS / "tx_01-339_resale_cert.pdf").read_bytes()


def _twins(app, fn, n=2):
    """Run fn(client) in n threads released at the same moment; return their responses."""
    barrier = threading.Barrier(n)
    clients = [app.test_client() for _ in range(n)]
    for c in clients:
        c.csrf_token()  # a session per twin, as two tabs of one browser have one each
    results = [None] * n

    def run(i):
        with app.app_context():
            barrier.wait()
            results[i] = fn(clients[i])
            db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_double_submitted_form_answers_submitted_twice_and_stores_one(app, make):
    rounds, answers = 8, []
    for _ in range(rounds):
        req, token = make.exemption_request(make.customer())
        responses = _twins(app, lambda c, t=token: c.post(
            f"/portal/r/{t}", data={**make.exemption_form(), "document": (io.BytesIO(DOC), "cert.pdf")},
            content_type="multipart/form-data"))
        answers += [(r.status_code, r.headers.get("Location", "")) for r in responses]
        db.session.expire_all()
        assert db.session.get(ExemptionRequest, req.id).status is RS.COMPLETED
        assert db.session.scalar(sa.select(sa.func.count(ExemptionCertificate.id))
                                 .where(ExemptionCertificate.request_id == req.id)) == 1
    assert answers == [(303, "/portal/link-submitted")] * (2 * rounds)


def test_simultaneous_opens_answer_204_and_record_one_opening(app, client, make):
    for _ in range(8):
        req, token = make.exemption_request(make.customer())
        responses = _twins(app, lambda c, t=token: c.post(f"/portal/r/{t}/opened"), n=3)
        assert [r.status_code for r in responses] == [204, 204, 204]
        db.session.expire_all()
        assert db.session.get(ExemptionRequest, req.id).status is RS.OPENED
        assert db.session.scalar(sa.select(sa.func.count(Activity.id)).where(
            Activity.subject_type == "exemption_request", Activity.subject_id == req.id,
            Activity.action == "opened")) == 1
