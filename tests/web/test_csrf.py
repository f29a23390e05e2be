"""CSRF: forms and htmx requests without the token are refused, and nothing changes."""


def test_form_post_without_token_is_refused(client, make):
    user = make.user()
    response = client.post("/login", data={"email": user.email, "password": "x"}, csrf=False)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)


def test_htmx_post_without_token_is_refused_and_user_stays_logged_in(client, auth, make):
    auth.login(make.user())
    response = client.post("/logout", headers={"HX-Request": "true"}, csrf=False)
    assert response.status_code == 400
    # still signed in: the logout did not happen
    assert client.get("/dashboard/").status_code == 200


def test_post_with_token_is_accepted(client, auth, make):
    auth.login(make.user())
    assert client.post("/logout").status_code == 303
    assert client.get("/dashboard/").status_code == 302
