"""Finding 2 and 8: sessions end on logout, password reset and disabling (copied cookies too), API
tokens can be listed and revoked and die with a reset, idle sessions end, and sign-in starts a
fresh session with a new CSRF token."""

from datetime import timedelta

import sqlalchemy as sa

from app.auth import services
from app.cli import create_api_token
from app.enums import Role
from app.extensions import db
from app.models import ApiToken
from app.models.base import utcnow
from tests.factories import PASSWORD


class _OwnRequests:
    """A test client whose every request loads the user from its own cookie (the tests share one app
    context, where Flask-Login would otherwise reuse the user an earlier request loaded)."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        method = getattr(self.client, name)
        if name not in ("get", "post"):
            return method

        def call(*args, **kwargs):
            from flask import g

            g.pop("_login_user", None)
            return method(*args, **kwargs)

        return call


def _copy_of(app, client):
    """A second browser holding a copy of ``client``'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return _OwnRequests(thief)


def _signed_in(response) -> bool:
    return response.status_code == 200


def test_logout_ends_copied_sessions_too(app, client, auth, make):
    auth.login(make.user(Role.REVIEWER))
    thief = _copy_of(app, client)
    assert _signed_in(thief.get("/dashboard/"))
    auth.logout()
    response = thief.get("/dashboard/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_password_reset_ends_sessions_and_api_tokens(app, client, auth, make):
    reviewer = make.user(Role.REVIEWER, email="rita@example.com")
    token = create_api_token(reviewer, "nightly sync")
    db.session.commit()
    auth.login(reviewer)
    victim = _copy_of(app, client)
    assert _signed_in(victim.get("/dashboard/"))
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    admin_client = app.test_client()
    admin = make.user(Role.ADMIN)
    admin_client.post("/login", data={"email": admin.email, "password": PASSWORD})
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert "nightly sync" in page and "never used" not in page  # listed with its last use
    admin_client.post(f"/admin/users/{reviewer.id}/reset-password")

    assert victim.get("/dashboard/").status_code == 302
    api = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    assert "nightly sync" not in admin_client.get("/admin/users").get_data(as_text=True)


def test_disabling_a_user_ends_their_sessions(app, client, auth, make):
    reviewer = make.user(Role.REVIEWER)
    auth.login(reviewer)
    victim = _copy_of(app, client)
    admin_client = app.test_client()
    admin = make.user(Role.ADMIN)
    admin_client.post("/login", data={"email": admin.email, "password": PASSWORD})
    admin_client.post(f"/admin/users/{reviewer.id}/enabled", data={"enabled": "0"})
    admin_client.post(f"/admin/users/{reviewer.id}/enabled", data={"enabled": "1"})
    # enabling again does not bring the old session back
    assert victim.get("/dashboard/").status_code == 302


def test_admin_revokes_one_api_token(app, client, auth, make):
    user = make.user(Role.REVIEWER, email="sync@example.com")
    keep, revoke = create_api_token(user, "keep me"), create_api_token(user, "old laptop")
    db.session.commit()
    auth.login(make.user(Role.ADMIN))
    page = client.get("/admin/users").get_data(as_text=True)
    assert "keep me" in page and "old laptop" in page
    victim = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "old laptop"))
    response = client.post(f"/admin/users/{user.id}/api-keys/{victim.id}/revoke", follow_redirects=True)
    assert "API token old laptop of sync@example.com is revoked." in response.get_data(as_text=True)
    assert "old laptop" not in client.get("/admin/users").get_data(as_text=True)
    anon = app.test_client()
    assert anon.get("/api/v1/me", headers={"Authorization": f"Bearer {revoke}"}).status_code == 401
    assert anon.get("/api/v1/me", headers={"Authorization": f"Bearer {keep}"}).status_code == 200
    # another user's id in the path: not found, nothing revoked
    other = make.user(Role.ADMIN)
    keeper = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "keep me"))
    assert client.post(f"/admin/users/{other.id}/api-keys/{keeper.id}/revoke").status_code == 404
    db.session.refresh(keeper)
    assert keeper.revoked is False


def test_end_sessions_is_a_service_for_other_flows(app, client, auth, make):
    user = make.user(Role.REVIEWER)
    auth.login(user)
    services.end_sessions(user)
    db.session.commit()
    assert client.get("/dashboard/").status_code == 302


def test_idle_session_ends(app, client, auth, make):
    app.config["SESSION_IDLE_MINUTES"] = 30
    auth.login(make.user(Role.REVIEWER))
    assert _signed_in(client.get("/dashboard/"))
    with client.session_transaction() as sess:
        sess[services.SEEN_KEY] = int((utcnow() - timedelta(minutes=29)).timestamp())
    assert _signed_in(client.get("/dashboard/"))  # 29 minutes: still signed in, and the clock restarts
    with client.session_transaction() as sess:
        sess[services.SEEN_KEY] = int((utcnow() - timedelta(minutes=31)).timestamp())
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sign_in_rotates_the_session_and_csrf_token(app, client, make):
    user = make.user(Role.REVIEWER)
    client.get("/login")
    with client.session_transaction() as sess:
        sess["csrf_token"] = "planted-by-an-attacker"
        sess["leftover"] = "from before sign-in"
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303
    with client.session_transaction() as sess:
        assert sess.get("csrf_token") != "planted-by-an-attacker"
        assert "leftover" not in sess
        assert sess["_user_id"] == f"{user.id}:{user.session_version}"


def test_admin_resetting_their_own_password_keeps_only_this_session(app, client, auth, make):
    admin = make.user(Role.ADMIN)
    auth.login(admin)
    other_browser = _copy_of(app, client)
    page = client.post(f"/admin/users/{admin.id}/reset-password")
    assert "New password for" in page.get_data(as_text=True)
    assert _signed_in(client.get("/admin/users"))
    assert other_browser.get("/admin/users").status_code == 302
