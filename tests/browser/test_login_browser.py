"""In Chromium: a demo user logs in and sees the dashboard."""

from app.cli import DEMO_PASSWORD, seed_demo


def test_demo_admin_logs_in(page, app):
    seed_demo()
    page.goto("/login")
    page.fill("input[name=email]", "admin@certdesk.demo")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert "Signed in as Avery Admin (admin)" in page.inner_text("main")
    assert not page.is_visible("text=Outbox")  # tucked in the Settings menu
    page.click("summary:has-text('Settings')")
    page.click("text=Outbox")
    page.wait_for_url("**/admin/outbox")
    assert "Every e-mail and SMS" in page.inner_text("main")


def test_wrong_password_shows_error_in_browser(page, app):
    seed_demo()
    page.goto("/login")
    page.fill("input[name=email]", "reviewer@certdesk.demo")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.is_visible("text=Wrong e-mail or password.")
