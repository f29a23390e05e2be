import json

import sqlalchemy as sa

from app.enums import Role
from app.extensions import db
from app.models import ApiToken, Customer, User
from app.models.users import hash_token


def test_seed_demo_json_is_idempotent_and_complete(app, runner):
    first = runner.invoke(args=["seed-demo", "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    roles = {u["role"] for u in data["users"]}
    assert roles == {"admin", "reviewer", "processor", "advisor", "customer"}
    assert all(u["password"] for u in data["users"])
    statuses = {c["status"] for c in data["customers"]}
    methods = {c["payment_method"] for c in data["customers"]}
    assert statuses == {"active", "inactive", "suspended"}
    assert methods == {"card", "amex", "ach", "wire"}
    outcomes = {c["card_outcome"] for c in data["customers"] if c["status"] == "active"}
    assert {"approve", "decline", None} <= outcomes
    counts = (db.session.scalar(sa.select(sa.func.count(User.id))),
              db.session.scalar(sa.select(sa.func.count(Customer.id))))
    again = json.loads(runner.invoke(args=["seed-demo", "--json"]).output)
    assert again["customers"] == data["customers"]
    assert counts == (db.session.scalar(sa.select(sa.func.count(User.id))),
                      db.session.scalar(sa.select(sa.func.count(Customer.id))))


def test_seed_demo_prints_logins(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert "admin@certdesk.demo" in result.output and "certdesk-demo" in result.output


def test_create_api_token_prints_token_stored_hashed(app, runner, make):
    user = make.user(Role.REVIEWER)
    result = runner.invoke(args=["create-api-token", "--email", user.email])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    stored = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    assert stored.token_hash == hash_token(token) and token not in stored.token_hash


def test_api_token_authenticates_and_bad_token_is_401(app, client, runner, make):
    user = make.user(Role.PROCESSOR)
    token = runner.invoke(args=["create-api-token", "--email", user.email]).output.strip().splitlines()[-1]
    ok = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.get_json()["email"] == user.email
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer cdk_wrong"})
    assert bad.status_code == 401 and "token" in bad.get_json()["error"]


def test_create_user_requires_customer_for_customer_role(app, runner):
    result = runner.invoke(args=["create-user", "--email", "c@example.com", "--role", "customer",
                                 "--password", "pw-12345678"])
    assert result.exit_code != 0 and "need a customer" in result.output
    result = runner.invoke(args=["create-user", "--email", "s@example.com", "--role", "advisor",
                                 "--password", "pw-12345678"])
    assert result.exit_code == 0
    assert db.session.scalar(sa.select(User).filter_by(email="s@example.com")).role is Role.ADVISOR


def test_unknown_create_api_token_email_fails(app, runner):
    result = runner.invoke(args=["create-api-token", "--email", "nobody@example.com"])
    assert result.exit_code != 0 and "No user" in result.output
