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
