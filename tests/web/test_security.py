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
