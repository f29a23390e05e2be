"""The permission matrix: every route x every role gets exactly the access DESIGN.md gives.

The expected table below is written from DESIGN.md's role table, independently of
app/auth/roles.py. Routes are read from the live URL map, so a new route without an access rule,
or with a rule this table does not know, fails here.
"""

import re

import pytest

from app.auth.roles import AUTHENTICATED, PERMISSIONS, PUBLIC
from app.enums import Role

A, R, P, V, C = "admin", "reviewer", "processor", "advisor", "customer"
EXPECTED = {
    "view_dashboard": {A, R, P, V},
    "process_queue": {A, R, P},
    "submit_coi": {A, R, V, C},
    "manage_exemption_requests": {A, R},
    "review_exemptions": {A, R},
    "manage_holders": {A, R},
    "resend_certificates": {A, R, C},
    "manage_customers": {A, R},
    "manage_programs": {A},
    "configure": {A},
    "portal": {C},
    AUTHENTICATED: {A, R, P, V, C},
    PUBLIC: {A, R, P, V, C, None},
}
ROLES = [None, *[r.value for r in Role]]


def routes(app):
    # last: what ends the session and API tokens the other requests use (sample id 1 is the signed-in
    # user: resetting its password ends its sessions and tokens), and logout
    ending = ("admin.revoke_api_key", "admin.reset_user_password", "auth.logout")
    order = {endpoint: n for n, endpoint in enumerate(ending, start=1)}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (order.get(r.endpoint, 0), r.rule)):
        if rule.endpoint == "static":
            continue
        yield rule, app.view_functions[rule.endpoint]


def test_permission_table_matches_design():
    assert {k: {str(r) for r in v} for k, v in PERMISSIONS.items()} == {
        k: v for k, v in EXPECTED.items() if k not in (PUBLIC, AUTHENTICATED)
    }


def test_every_route_declares_known_access(app):
    missing = [rule.rule for rule, view in routes(app) if getattr(view, "access", None) not in EXPECTED]
    assert missing == [], f"routes without an access rule from the role table: {missing}"


@pytest.fixture
def world(app, make):
    own = make.customer(name="Own Customer")
    other = make.customer(name="Other Customer")
    users = {role: make.user(Role(role), customer=own if role == C else None) for role in ROLES if role}
    from app.cli import create_api_token
    from app.extensions import db

    tokens = {role: create_api_token(u) for role, u in users.items()}
    db.session.commit()
    return {"own": own, "other": other, "users": users, "tokens": tokens}


def sample_url(rule, world) -> str:
    url = rule.rule
    for name in re.findall(r"<(?:[^:>]+:)?([^>]+)>", rule.rule):
        value = world["own"].id if name == "customer_id" else ("not-a-real-token" if "token" in name else 1)
        url = re.sub(r"<(?:[^:>]+:)?" + name + ">", str(value), url)
    return url


@pytest.mark.parametrize("role", ROLES)
def test_route_matrix(app, client, auth, world, role):
    if role:
        auth.login(world["users"][role])
    failures = []
    for rule, view in routes(app):
        access = view.access
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        url = sample_url(rule, world)
        headers = {}
        is_api = rule.rule.startswith("/api/")
        if is_api and role:
            headers["Authorization"] = f"Bearer {world['tokens'][role]}"
        response = client.open(url, method=method, headers=headers)
        status = response.status_code
        allowed = role in EXPECTED[access]
        if is_api and access != PUBLIC and role is None:
            ok = status == 401
        elif access == PUBLIC:
            ok = status < 500 and status not in (401, 403)
        elif allowed and rule.endpoint == "auth.logout":
            ok = status == 303
        elif allowed:
            ok = status < 500 and status not in (401, 403) and "/login" not in response.headers.get("Location", "")
        elif role is None:
            ok = status == 302 and "/login" in response.headers["Location"]
        elif role == C:
            ok = status == 404
        else:
            ok = status == 403
        if not ok:
            failures.append(f"{method} {url} [{access}] as {role}: {status}")
    assert failures == []
