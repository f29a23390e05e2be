"""Every endpoint a template names exists, so templates link without "does this page exist?" guards.

A quoted ``"<blueprint>.<view>"`` in any template under templates/ (a ``url_for`` argument or an
entry of a list of links such as the customer tabs) must be a registered view. A renamed or removed
view therefore fails here instead of hiding a link or answering 500 on the page.
"""

import re

from app.enums import Role
from tests.paths import REPO

TEMPLATES = REPO / "templates"
QUOTED = re.compile(r"""["']([a-z_]+)\.([a-z_0-9]+)["']""")


def _named_endpoints(blueprints) -> list[tuple[str, str]]:
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for bp_name, view in QUOTED.findall(path.read_text(encoding="utf-8")):
            if bp_name in blueprints:
                found.append((str(path.relative_to(TEMPLATES)), f"{bp_name}.{view}"))
    return found


def test_every_endpoint_a_template_names_exists(app):
    named = _named_endpoints(app.blueprints)
    assert len(named) > 100  # the scan reads the templates (not an empty folder)
    missing = [(where, endpoint) for where, endpoint in named if endpoint not in app.view_functions]
    assert missing == []


def test_the_scan_notices_a_missing_endpoint(app, tmp_path):
    assert ("x.html", "customers.no_such_page") not in _named_endpoints(app.blueprints)
    line = """<a href="{{ url_for('customers.no_such_page') }}">x</a>"""
    assert QUOTED.findall(line) == [("customers", "no_such_page")]
    assert "customers.no_such_page" not in app.view_functions


def test_the_customer_page_shows_every_tab(client, auth, make):
    customer = make.customer(name="Acme Roofing LLC")
    auth.login(make.user(Role.ADMIN))
    page = client.get(f"/customers/{customer.id}").get_data(as_text=True)
    nav = page[page.index('aria-label="Customer sections"'):]
    nav = nav[:nav.index("</nav>")]
    labels = re.findall(r">([^<>]+)</a>", nav)
    assert labels == ["Overview", "Policies", "Certificates", "Additional interests", "Sent certificates",
                      "Exemptions", "Users", "Card on file"]
