"""Customer users: staff invite by e-mail; the e-mail's single-use, expiring link sets the password and
the customer signs in; re-invite kills the old link; disable stops sign-in; every user changes its own
password. Also the public API contract POST /api/v1/customers/{id}/users."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from app.enums import Role
from app.extensions import db
from app.models import Activity, OutboxMessage, User, UserInvitation
from app.models.base import utcnow

LINK = re.compile(r"https?://\S+/invitations/[A-Za-z0-9_-]+")


def mailed_link(smtp, address: str, index: int = -1) -> str:
    messages = smtp.to(address)
    assert messages, f"no e-mail to {address}"
    body = messages[index].get_body(preferencelist=("plain",)).get_content()
    match = LINK.search(body)
    assert match, body
    return match.group(0)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def invite(client, customer, email="pat@orchard.example.com", name="Pat Orchard"):
    return client.post(f"/customers/{customer.id}/users", data={"email": email, "name": name})


def test_invitation_email_link_sets_password_and_customer_signs_in(app, client, auth, make, run_jobs, smtp):
    customer = make.customer(name="Orchard Supply")
    admin = make.user(Role.ADMIN)
    db.session.commit()
    auth.login(admin)
    response = invite(client, customer)
    assert response.status_code == 303
    page = client.get(f"/customers/{customer.id}/users").get_data(as_text=True)
    assert "pat@orchard.example.com" in page and "invited" in page
    run_jobs()
    mail = smtp.to("pat@orchard.example.com")
    assert len(mail) == 1 and "set your password" in mail[0]["Subject"]
    link = mailed_link(smtp, "pat@orchard.example.com")
    # only the hash of the token is stored; neither the table nor the outbox row holds the link
    token = link.rsplit("/", 1)[1]
    assert db.session.scalar(sa.select(sa.func.count(UserInvitation.id)).where(UserInvitation.token_hash == token)) == 0
    assert token not in db.session.scalar(sa.select(OutboxMessage.body_text))
    user = db.session.scalar(sa.select(User).where(User.email == "pat@orchard.example.com"))
    assert user.role is Role.CUSTOMER and user.customer_id == customer.id
    auth.logout()
    # the invited person cannot sign in before choosing a password
    assert client.post("/login", data={"email": user.email, "password": "anything at all"}).status_code == 422

    form = client.get(path_of(link))
    assert form.status_code == 200 and "Choose your password" in form.get_data(as_text=True)
    assert "pat@orchard.example.com" in form.get_data(as_text=True)
    short = client.post(path_of(link), data={"password": "short", "confirm": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.get_data(as_text=True)
    mismatch = client.post(path_of(link), data={"password": "orchard-password-1", "confirm": "orchard-password-2"})
    assert mismatch.status_code == 422 and "not the same" in mismatch.get_data(as_text=True)
    done = client.post(path_of(link), data={"password": "orchard-password-1", "confirm": "orchard-password-1"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")

    signed_in = client.post("/login", data={"email": "pat@orchard.example.com", "password": "orchard-password-1"})
    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/portal/")
    assert "Orchard Supply" in client.get("/portal/").get_data(as_text=True)
    # single use: the same link no longer works
    client.post("/logout")
    again = client.get(path_of(link))
    assert again.status_code == 404 and "This link is not available" in again.get_data(as_text=True)
    page_for_staff = None
    auth.login(admin)
    page_for_staff = client.get(f"/customers/{customer.id}/users").get_data(as_text=True)
    assert "active" in page_for_staff
    actions = set(db.session.scalars(sa.select(Activity.action).where(Activity.customer_id == customer.id)))
    assert {"user_invited", "password_set"} <= actions


def test_reinvite_kills_the_old_link_and_expired_links_are_refused(app, client, auth, make, run_jobs, smtp):
    customer = make.customer()
    admin = make.user(Role.REVIEWER)
    db.session.commit()
    auth.login(admin)
    invite(client, customer, email="first@c.example.com")
    run_jobs()
    old = mailed_link(smtp, "first@c.example.com")
    user = db.session.scalar(sa.select(User).where(User.email == "first@c.example.com"))
    response = client.post(f"/customers/{customer.id}/users/{user.id}/reinvite")
    assert response.status_code == 303
    run_jobs()
    assert len(smtp.to("first@c.example.com")) == 2
    new = mailed_link(smtp, "first@c.example.com")
    assert new != old
    auth.logout()
    assert client.get(path_of(old)).status_code == 404
    assert client.get(path_of(new)).status_code == 200
    # expiry is checked on every use
    invitation = db.session.scalar(sa.select(UserInvitation).order_by(UserInvitation.id.desc()))
    invitation.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get(path_of(new)).status_code == 404
    posted = client.post(path_of(new), data={"password": "some-password-1", "confirm": "some-password-1"})
    assert posted.status_code == 404
    assert db.session.get(User, user.id).password_hash.startswith("!")
    # tampered tokens get the same neutral page
    assert client.get("/invitations/not-a-real-token").status_code == 404


def test_disabled_user_cannot_sign_in_and_its_link_dies(app, client, auth, make, run_jobs, smtp):
    customer = make.customer()
    admin = make.user(Role.ADMIN)
    member = make.user(Role.CUSTOMER, customer=customer, email="member@c.example.com")
    db.session.commit()
    auth.login(admin)
    disabled = client.post(f"/customers/{customer.id}/users/{member.id}/enabled", data={"enabled": "0"})
    assert disabled.status_code == 303
    page = client.get(f"/customers/{customer.id}/users").get_data(as_text=True)
    assert "disabled" in page and "Enable" in page
    # a disabled user is not re-invited
    refused = client.post(f"/customers/{customer.id}/users/{member.id}/reinvite")
    assert refused.status_code == 409 and "enable the user" in refused.get_data(as_text=True)
    auth.logout()
    from tests.factories import PASSWORD

    assert client.post("/login", data={"email": member.email, "password": PASSWORD}).status_code == 422
    auth.login(admin)
    assert client.post(f"/customers/{customer.id}/users/{member.id}/enabled", data={"enabled": "1"}).status_code == 303
    auth.logout()
    auth.login(member)


def test_invite_refusals_store_nothing(app, client, auth, make):
    customer = make.customer()
    other = make.customer()
    admin = make.user(Role.ADMIN)
    make.user(Role.CUSTOMER, customer=other, email="taken@c.example.com")
    db.session.commit()
    auth.login(admin)
    before = db.session.scalar(sa.select(sa.func.count(User.id)))
    bad = invite(client, customer, email="not an e-mail")
    assert bad.status_code == 422 and "e-mail" in bad.get_data(as_text=True).lower()
    taken = invite(client, customer, email="taken@c.example.com")
    assert taken.status_code == 422 and "exists already" in taken.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == before
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    # staff who only read see the list but no invite form; a processor cannot invite
    processor = make.user(Role.PROCESSOR)
    db.session.commit()
    auth.logout()
    auth.login(processor)
    page = client.get(f"/customers/{customer.id}/users").get_data(as_text=True)
    assert "Portal users" in page and "Send invitation" not in page
    assert invite(client, customer, email="new@c.example.com").status_code == 403
    # another customer's user is not reachable under this customer
    auth.logout()
    auth.login(admin)
    stranger = db.session.scalar(sa.select(User).where(User.email == "taken@c.example.com"))
    assert client.post(f"/customers/{customer.id}/users/{stranger.id}/reinvite").status_code == 404


def test_every_user_changes_its_own_password(app, client, auth, make):
    from tests.factories import PASSWORD

    customer = make.customer()
    for user in (make.user(Role.CUSTOMER, customer=customer), make.user(Role.ADVISOR)):
        db.session.commit()
        auth.login(user)
        page = client.get("/account/password")
        assert page.status_code == 200 and "Change your password" in page.get_data(as_text=True)
        home = client.get("/portal/" if user.role is Role.CUSTOMER else "/dashboard/")
        assert "/account/password" in home.get_data(as_text=True)
        wrong = client.post("/account/password", data={"current_password": "nope", "new_password": "brand-new-pass-1",
                                                       "confirm": "brand-new-pass-1"})
        assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
        ok = client.post("/account/password", data={"current_password": PASSWORD, "new_password": "brand-new-pass-1",
                                                    "confirm": "brand-new-pass-1"})
        assert ok.status_code == 303
        assert "Your password is changed" in client.get("/account/password").get_data(as_text=True)
        auth.logout()
        assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 422
        auth.login(user, password="brand-new-pass-1")
        auth.logout()


def test_api_invites_a_customer_user(app, client, make, run_jobs, smtp):
    from app.cli import create_api_token

    customer = make.customer()
    admin = make.user(Role.ADMIN)
    advisor = make.user(Role.ADVISOR)
    tokens = {u.role: create_api_token(u) for u in (admin, advisor)}
    db.session.commit()

    def post(body, role=Role.ADMIN, customer_id=customer.id):
        return client.post(f"/api/v1/customers/{customer_id}/users", json=body,
                           headers={"Authorization": f"Bearer {tokens[role]}"})

    created = post({"email": "api-user@c.example.com", "name": "Api User"})
    assert created.status_code == 201, created.get_json()
    user = db.session.get(User, created.get_json()["id"])
    assert user.email == "api-user@c.example.com" and user.customer_id == customer.id
    run_jobs()
    assert "/invitations/" in mailed_link(smtp, "api-user@c.example.com")
    assert post({"email": "api-user@c.example.com"}).status_code == 409
    bad = post({"email": 42})
    assert bad.status_code == 422 and "email" in bad.get_json()["fields"]
    assert post({"email": "x@c.example.com"}, customer_id=999999).status_code == 404
    assert post({"email": "y@c.example.com"}, role=Role.ADVISOR).status_code == 403
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "post" in spec["paths"]["/api/v1/customers/{id}/users"]


def test_changing_the_password_ends_the_users_other_sessions(app, make):
    from tests.conftest import AuthActions
    from tests.factories import PASSWORD

    user = make.user(Role.REVIEWER)
    db.session.commit()
    here, elsewhere = app.test_client(), app.test_client()
    AuthActions(here).login(user)
    AuthActions(elsewhere).login(user)
    assert elsewhere.get("/dashboard/").status_code == 200
    changed = here.post("/account/password", data={"current_password": PASSWORD, "new_password": "another-pass-42",
                                                   "confirm": "another-pass-42"})
    assert changed.status_code == 303
    assert here.get("/dashboard/").status_code == 200  # this session carries on
    gone = elsewhere.get("/dashboard/")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]  # the other one ends
