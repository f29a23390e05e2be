def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_admin_logs_in_and_sees_dashboard(client, auth, make):
    admin = make.user(name="Ada Admin")
    auth.login(admin)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Signed in as Ada Admin (admin)" in page
