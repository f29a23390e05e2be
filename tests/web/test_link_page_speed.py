"""The link page's state <select> is rendered from options built once per process and language, and is
the same HTML WTForms' widget would write (so what a customer sees and sends does not change)."""

import pytest

from app.exemptions.forms import LinkForm
from app.portal import links


@pytest.mark.parametrize("data", [None, "", "TX", "DC", "WY", "tx", "zz<\"'&", "AL"])
@pytest.mark.parametrize("locale", ["en", "es"])
def test_state_select_is_the_widgets_html(app, data, locale):
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale(locale):
        form = LinkForm(formdata=None)
        field = form.jurisdictions[3].form.state
        field.data = data
        label = "Estado 4" if locale == "es" else "State <4> & \"more\""
        assert str(links.state_select(field, label)) == str(field(**{"aria-label": label}))


def test_the_link_page_marks_each_rows_choice(client, make):
    req, token = make.exemption_request()
    req.prefill = {"jurisdictions": [{"state": "TX"}, {"state": "DC"}]}
    from app.extensions import db

    db.session.commit()
    html = client.get(f"/portal/r/{token}").text
    assert html.count("<select") >= 5 and html.count("<option selected") >= 2
    assert '<option selected value="TX">Texas (TX)</option>' in html
    assert '<option selected value="DC">' in html
    assert 'aria-label="State 1" id="jurisdictions-0-state" name="jurisdictions-0-state"' in html


def _without_tokens(html: str) -> str:
    import re

    return re.sub(r'(name="csrf_token" type="hidden" value="|"X-CSRFToken": ")[^"]+', r"\1", html)


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_blank_link_page_is_the_page_rendered_field_by_field(client, make, monkeypatch, language):
    """A blank form's certificate fields come from HTML rendered once per language: the page a customer gets
    is the one the full form renders, byte for byte (only the CSRF token differs between two renders)."""
    req, token = make.exemption_request()
    req.customer.language = language
    from app.extensions import db

    db.session.commit()
    monkeypatch.setattr(links, "_BLANK_FIELDS", {})
    monkeypatch.setattr(links, "CACHE_BLANK_FIELDS", False)
    full = client.get(f"/portal/r/{token}").text
    monkeypatch.setattr(links, "CACHE_BLANK_FIELDS", True)
    first, again = client.get(f"/portal/r/{token}").text, client.get(f"/portal/r/{token}").text
    assert list(links._BLANK_FIELDS) == [language]
    assert _without_tokens(first) == _without_tokens(full) == _without_tokens(again)
    assert 'name="csrf_token" type="hidden" value="' in first and 'id="jurisdictions-4-state"' in first
    assert ("Motivo de la exención" if language == "es" else "Exemption reason") in first


def test_the_cached_fields_keep_the_visitors_language(client, make, monkeypatch):
    monkeypatch.setattr(links, "_BLANK_FIELDS", {})
    req, token = make.exemption_request()
    english = client.get(f"/portal/r/{token}").text
    spanish = client.get(f"/portal/r/{token}?lang=es").text
    assert "Exemption reason" in english and "Exemption reason" not in spanish
    assert "Motivo de la exención" in spanish and sorted(links._BLANK_FIELDS) == ["en", "es"]


def test_link_rate_limit_in_redis_counts_and_answers_its_headers(app, make, tmp_path):
    """With Redis storage the hit answers the X-RateLimit-* headers too: the limit still holds at the
    configured count, and each answer says what is left and when the window ends."""
    import time

    from redis import Redis

    from app.ratelimit import OneTripRedisStorage
    from tests.web.test_login_hardening import _app_with

    prefix = f"certdesk-onetrip-{time.time_ns()}"
    other = _app_with(tmp_path, RATELIMIT_STORAGE_URI=app.config["REDIS_URL"], QUEUE_PREFIX=f"{prefix}:",
                      LINK_RATE_LIMIT="3 per minute")
    from app.extensions import limiter

    assert isinstance(limiter._storage, OneTripRedisStorage)
    req, token = make.exemption_request()
    try:
        with other.app_context():
            client = other.test_client()
            answers = [client.get(f"/portal/r/{token}") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers[:3])
        reset = int(answers[0].headers["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 61
        assert "asks for your sales-tax exemption certificate" in answers[0].text
        assert list(Redis.from_url(app.config["REDIS_URL"]).scan_iter(f"*{prefix}:limits*"))
    finally:
        redis = Redis.from_url(app.config["REDIS_URL"])
        for key in redis.scan_iter(f"*{prefix}*"):
            redis.delete(key)


def test_wtforms_messages_follow_each_requests_language(app):
    """WTForms' own messages come from catalogs kept per process and language, still per request's language."""
    from flask_babel import force_locale

    from app.exemptions.forms import BlankLinkForm

    with app.test_request_context("/"):
        for language, text in (("es", "Este campo es obligatorio."), ("en", "This field is required."),
                               ("es", "Este campo es obligatorio.")):
            with force_locale(language):
                form = BlankLinkForm(formdata=None)
                assert form.meta.get_translations(form).gettext("This field is required.") == text
