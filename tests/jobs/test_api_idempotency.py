"""POST /api/v1/exemption-requests with an Idempotency-Key: a retry answers the first request (200)
and sends no second link; the key with another body is 422; simultaneous twins give one 201 and one 200."""

import threading

import pytest
import sqlalchemy as sa

from app.enums import Role
from app.extensions import db
from app.models import ExemptionRequest, OutboxMessage


def _token(make):
    from app.cli import create_api_token

    token = create_api_token(make.user(Role.REVIEWER))
    db.session.commit()
    return token


def _post(client, token, body, key=None):
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/exemption-requests", json=body, headers=headers, csrf=False)


def test_replay_answers_the_first_request_and_sends_one_link(app, client, make):
    token, customer = _token(make), make.customer()
    body = {"customer_id": customer.id, "email": "ap@buyer.example.com"}
    first = _post(client, token, body, key="order-7")
    assert first.status_code == 201
    again = _post(client, token, body, key="order-7")
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    other = _post(client, token, {**body, "email": "someone@else.example.com"}, key="order-7")
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["fields"]
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1
    assert _post(client, token, body).status_code == 201  # no key: a new request each time
    assert _post(client, token, body, key="k" * 81).status_code == 422
    spec = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/exemption-requests"]["post"]
    assert "200" in spec["responses"] and spec["parameters"][0]["name"] == "Idempotency-Key"


def test_simultaneous_twins_with_one_key_answer_201_and_200(app, make):
    if db.engine.dialect.name == "sqlite":
        pytest.skip("truly simultaneous writers need PostgreSQL: SQLite locks the whole file")
    token, customer = _token(make), make.customer()
    db.session.commit()
    codes = []
    for round_ in range(6):
        body = {"customer_id": customer.id, "email": f"twin{round_}@buyer.example.com"}
        barrier = threading.Barrier(2)
        results = [None, None]

        def run(i, body=body, barrier=barrier, results=results, key=f"twin-{round_}"):
            client = app.test_client()
            with app.app_context():
                barrier.wait()
                results[i] = _post(client, token, body, key=key)
                db.session.remove()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes.append(sorted(r.status_code for r in results))
        assert all("id" in r.get_json() for r in results), [r.get_json() for r in results]
        assert results[0].get_json()["id"] == results[1].get_json()["id"]
    assert codes == [[200, 201]] * 6
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 6
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 6
