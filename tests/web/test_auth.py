from app.enums import Role


def test_wrong_password_shows_message_and_422(client, make):
    user = make.user()
    response = client.post("/login", data={"email": user.email, "password": "nope"})
    assert response.status_code == 422
    assert "Wrong e-mail or password." in response.get_data(as_text=True)


def test_customer_lands_on_portal_and_staff_on_dashboard(client, auth, make):
    customer_user = make.user(Role.CUSTOMER)
    response = auth.login(customer_user)
    assert response.headers["Location"].endswith("/portal/")
    auth.logout()
    assert auth.login(make.user(Role.PROCESSOR)).headers["Location"].endswith("/dashboard/")


def test_login_next_must_be_local(client, make):
    user = make.user()
    response = client.post("/login?next=https://evil.example/", data={"email": user.email,
                                                                     "password": "correct horse battery staple"})
    assert response.headers["Location"] == "/dashboard/"


def test_login_is_rate_limited(client, make):
    user = make.user()
    statuses = [client.post("/login", data={"email": user.email, "password": "bad"}).status_code for _ in range(12)]
    assert statuses[:10] == [422] * 10
    assert statuses[-1] == 429


def test_session_cookie_flags(client, auth, make):
    response = auth.login(make.user())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_disabled_user_cannot_log_in(client, make):
    from app.extensions import db

    user = make.user()
    user.is_enabled = False
    db.session.commit()
    response = client.post("/login", data={"email": user.email, "password": "correct horse battery staple"})
    assert response.status_code == 422
