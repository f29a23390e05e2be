import sqlalchemy as sa

from app.enums import Role
from app.extensions import db
from app.models import Activity, User


def test_admin_adds_a_customer_user_who_can_log_in(client, auth, make):
    customer = make.customer(name="Widget Works")
    auth.login(make.user(Role.ADMIN))
    response = client.post("/admin/users", data={"email": "buyer@widget.example.com", "name": "Wanda",
                                                "role": "customer", "customer_id": customer.id,
                                                "password": "long-enough-pw"})
    assert response.status_code == 303
    page = client.get("/admin/users").get_data(as_text=True)
    assert "buyer@widget.example.com" in page and "Widget Works" in page
    auth.logout()
    auth.login("buyer@widget.example.com", "long-enough-pw")
    assert "Widget Works" in client.get("/portal/").get_data(as_text=True)


def test_bad_new_user_is_refused_and_nothing_stored(client, auth, make):
    auth.login(make.user(Role.ADMIN))
    before = db.session.scalar(sa.select(sa.func.count(User.id)))
    for data, message in [
        ({"email": "x@example.com", "role": "customer", "password": "long-enough-pw"}, "need a customer"),
        ({"email": "not-an-email", "role": "reviewer", "password": "long-enough-pw"}, "Not a valid e-mail"),
        ({"email": "y@example.com", "role": "reviewer", "password": "short"}, "at least 10"),
        ({"email": "z@example.com", "role": "emperor", "password": "long-enough-pw"}, "Not a valid choice"),
        ({}, "This field is required"),
    ]:
        response = client.post("/admin/users", data=data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == before


def test_disable_and_reset_password(client, auth, make):
    admin = make.user(Role.ADMIN)
    reviewer = make.user(Role.REVIEWER)
    auth.login(admin)
    assert client.post(f"/admin/users/{reviewer.id}/enabled", data={"enabled": "0"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(User, reviewer.id).is_enabled is False
    page = client.post(f"/admin/users/{reviewer.id}/reset-password").get_data(as_text=True)
    password = page.split("<code>", 1)[1].split("</code>", 1)[0]
    client.post(f"/admin/users/{reviewer.id}/enabled", data={"enabled": "1"})
    auth.logout()
    auth.login(reviewer, password)
    actions = set(db.session.scalars(sa.select(Activity.action).where(Activity.subject_type == "user")))
    assert {"user_disabled", "user_enabled", "password_reset"} <= actions


def test_admin_cannot_disable_themself(client, auth, make):
    admin = make.user(Role.ADMIN)
    auth.login(admin)
    client.post(f"/admin/users/{admin.id}/enabled", data={"enabled": "0"})
    db.session.expire_all()
    assert db.session.get(User, admin.id).is_enabled is True


def test_outbox_search(client, auth, make):
    from app.notify import queue_email

    queue_email("alpha@example.com", "notice", subject="Alpha news", context={"heading": "h", "body": "b"})
    queue_email("beta@example.com", "notice", subject="Beta news", context={"heading": "h", "body": "b"})
    db.session.commit()
    auth.login(make.user(Role.ADMIN))
    page = client.get("/admin/outbox?q=beta").get_data(as_text=True)
    assert "beta@example.com" in page and "alpha@example.com" not in page
