import re

from app.enums import RequestType, Role


def _count(page: str, tile: str, label: str) -> int:
    block = page.split(f'id="{tile}"', 1)[1].split("</a>", 1)[0]
    return int(re.search(r"<strong>(\d+)</strong>" + label, block).group(1))


def test_reviewer_sees_work_waiting(client, auth, make):
    customer = make.customer()
    make.exemption_request(customer)
    make.exemption_request(customer)
    make.queue_request(customer=customer, type=RequestType.COI_WOS)
    auth.login(make.user(Role.REVIEWER))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert _count(page, "tile-exemptions", "requests out") == 2
    assert _count(page, "tile-queue", "WOS waiting") == 1
    assert _count(page, "tile-queue", "COI / POI waiting") == 0


def test_advisor_sees_queue_counts_but_not_exemptions_or_outbox(client, auth, make):
    auth.login(make.user(Role.ADVISOR))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert 'id="tile-queue"' in page and "Follow COI" in page
    assert 'id="tile-exemptions"' not in page and 'id="tile-outbox"' not in page
    nav = page.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    assert "Queue" in nav and "Settings" not in nav


def test_admin_nav_reaches_every_settings_page(client, auth, make):
    auth.login(make.user(Role.ADMIN))
    page = client.get("/dashboard/").get_data(as_text=True)
    nav = page.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    for href in ("/admin/users", "/admin/outbox", "/admin/fees", "/admin/reasons", "/admin/agency"):
        assert f'href="{href}"' in nav
        assert client.get(href).status_code == 200
