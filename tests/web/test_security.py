def test_security_headers_on_pages(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_htmx_is_vendored_not_from_a_cdn(client):
    page = client.get("/login").get_data(as_text=True)
    assert '/static/vendor/htmx-2.min.js' in page
    assert "unpkg" not in page and "cdn" not in page.lower()
    assert client.get("/static/vendor/htmx-2.min.js").status_code == 200


def test_api_errors_are_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json() == {"error": "Not found."}


def test_unknown_page_is_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Not found." in response.get_data(as_text=True)


def test_openapi_document_is_published(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/me" in doc["paths"]


# -- caching, HSTS, 405 (findings 9 and 12) -------------------------------------------------------

def test_signed_in_pages_and_downloads_are_not_stored(client, auth, make):
    from app.enums import Role

    auth.login(make.user(Role.ADMIN))
    for url in ("/dashboard/", "/admin/users", "/admin/outbox", "/customers/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url


def test_portal_and_link_pages_are_not_stored(client, auth, make):
    from app.enums import Role

    req, token = make.exemption_request()
    assert client.get(f"/portal/r/{token}").headers["Cache-Control"] == "no-store"
    assert client.get("/portal/r/not-a-token").headers["Cache-Control"] == "no-store"
    auth.login(make.user(Role.CUSTOMER))
    assert client.get("/portal/").headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable(client):
    assert client.get("/static/js/app.js").headers.get("Cache-Control") != "no-store"


def test_hsts_only_when_served_over_https(app, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    app.config["BASE_URL"] = "https://certdesk.example.com"
    assert client.get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_405_keeps_the_allow_header(client):
    page = client.delete("/login")
    assert page.status_code == 405
    assert set(page.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    api = client.put("/api/v1/openapi.json")
    assert api.status_code == 405 and "GET" in api.headers["Allow"]
    assert api.get_json() == {"error": "That method is not allowed here."}


# -- NUL, control and bidi characters (findings 6 and 12) --------------------------------------------

def test_nul_and_control_characters_are_dropped_never_a_500(client, auth, make):
    from app.enums import Role

    user = make.user(Role.REVIEWER, email="nul@example.com")
    # the e-mail with a NUL (a 500 on PostgreSQL before) is read without it
    signed_in = client.post("/login", data={"email": "nul@exa\x00mple.com\x07", "password": "long-enough-pw-1"})
    assert signed_in.status_code == 422 and "Wrong e-mail or password." in signed_in.text
    from tests.factories import PASSWORD

    assert client.post("/login", data={"email": "nul@\x00example.com", "password": PASSWORD}).status_code == 303
    client.post("/logout")
    assert client.get("/portal/r/abc%00def").status_code == 404
    auth.login(user)
    listing = client.get("/customers/", query_string={"q": "a\x00b\u202e"})
    assert listing.status_code == 200
    api = client.post("/api/v1/exemption-requests", json={"email": "a\x00b"})
    assert api.status_code == 401  # filtered, then refused for the missing token: no 500


def test_bidi_overrides_are_dropped_from_saved_names(client, auth, make):
    import sqlalchemy as sa

    from app.enums import Role
    from app.extensions import db
    from app.models import User

    auth.login(make.user(Role.ADMIN))
    response = client.post("/admin/users", data={"email": "evil@example.com", "name": "Ann \u202egpj.exe\u2066x\u2069",
                                                "role": "reviewer", "password": "long-enough-pw"})
    assert response.status_code == 303
    user = db.session.scalar(sa.select(User).where(User.email == "evil@example.com"))
    assert user.name == "Ann gpj.exex"
    assert "\u202e" not in client.get("/admin/users").get_data(as_text=True)
