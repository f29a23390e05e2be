"""The permission matrix of tests/web/test_permissions.py, restricted to the exemption routes (so a
failure here points at this capability), plus a customer user's view of another customer."""

import pytest

from app.enums import Role
from tests.web.test_permissions import EXPECTED, ROLES, sample_url, world  # noqa: F401 - fixture

C = "customer"


def exemption_routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "exemption" in rule.rule or rule.rule.startswith(("/portal/r/", "/portal/link-")):
            yield rule, app.view_functions[rule.endpoint]


def test_every_exemption_route_declares_access(app):
    rules = list(exemption_routes(app))
    assert len(rules) >= 20
    assert [r.rule for r, v in rules if getattr(v, "access", None) not in EXPECTED] == []


@pytest.mark.parametrize("role", ROLES)
def test_exemption_route_matrix(app, client, auth, world, role):  # noqa: F811
    if role:
        auth.login(world["users"][role])
    failures = []
    for rule, view in exemption_routes(app):
        access = view.access
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = sample_url(rule, world)
            headers = {}
            is_api = rule.rule.startswith("/api/")
            if is_api and role:
                headers["Authorization"] = f"Bearer {world['tokens'][role]}"
            response = client.open(url, method=method, headers=headers)
            status = response.status_code
            allowed = role in EXPECTED[access]
            if is_api and access != "public" and role is None:
                ok = status == 401
            elif access == "public":
                ok = status < 500 and status not in (401, 403)
            elif allowed:
                # garbage / empty input: a 4xx answer at most, never a 500
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


def test_customer_token_sees_only_its_own_customer_in_the_lookup(app, client, make):
    from app.cli import create_api_token
    from app.extensions import db

    own = make.customer()
    other = make.customer()
    user = make.user(Role.CUSTOMER, customer=own)
    token = create_api_token(user)
    db.session.commit()
    response = client.get(f"/api/v1/customers/{other.id}/exemptions?jurisdiction=TX",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
