from app.enums import Role


def test_certificates_tab_stays_active_on_its_sub_pages(client, auth, make):
    customer = make.customer()
    auth.login(make.user(Role.ADMIN))
    page = client.get(f"/customers/{customer.id}/certificates/request").get_data(as_text=True)
    tabs = page.split('aria-label="Customer sections"', 1)[1].split("</nav>", 1)[0]
    assert f'href="/customers/{customer.id}/certificates" class="active"' in tabs
    assert f'href="/customers/{customer.id}" class="active"' not in tabs
    overview = client.get(f"/customers/{customer.id}").get_data(as_text=True)
    tabs = overview.split('aria-label="Customer sections"', 1)[1].split("</nav>", 1)[0]
    assert f'href="/customers/{customer.id}" class="active"' in tabs
