"""Admins keep the banned-wording list; the issue guard refuses what is on it from then on."""

from datetime import date

from app.enums import Role
from app.extensions import db
from app.insurance import issuing
from app.models.insurance import BannedWording


def test_admin_sees_the_seeded_list_adds_a_phrase_and_switches_one_off(app, make, client, auth):
    auth.login(make.user(Role.ADMIN))
    page = client.get("/admin/wording")
    assert page.status_code == 200
    for seeded in ("30 days notice", "will notify", "guarantee", "notwithstanding", "extend the coverage"):
        assert seeded in page.text
    added = client.post("/admin/wording", data={"phrase": "Hold harmless", "reason": "Contract wording, not ours."})
    assert added.status_code == 303
    assert "Hold harmless" in client.get("/admin/wording").text
    result = issuing.guard_mod.check({"kind": "coi", "coverages": [], "description": "We hold-harmless the city."},
                                     {}, {"name": "X", "address": "1", "city": "A", "state": "TX", "zip_code": "78701"},
                                     date(2026, 6, 1), issuing.active_wording())
    assert [b.code for b in result.blocks] == ["banned_wording"] and "Contract wording, not ours." in result.reasons[0]
    guarantee = db.session.scalar(db.select(BannedWording).filter_by(phrase="guarantee"))
    off = client.post(f"/admin/wording/{guarantee.id}/active", data={"active": "0"})
    assert off.status_code == 303
    assert ("guarantee", guarantee.reason) not in issuing.active_wording()


def test_bad_wording_input_is_refused_and_stores_nothing(app, make, client, auth):
    auth.login(make.user(Role.ADMIN))
    client.get("/admin/wording")
    before = db.session.scalar(db.select(db.func.count(BannedWording.id)))
    for form in ({"phrase": "  ", "reason": "why"}, {"phrase": "fine print", "reason": ""},
                 {"phrase": "x" * 200, "reason": "too long"}):
        response = client.post("/admin/wording", data=form)
        assert response.status_code == 422
    assert db.session.scalar(db.select(db.func.count(BannedWording.id))) == before
    assert client.post("/admin/wording/999999/active", data={"active": "0"}).status_code == 404
