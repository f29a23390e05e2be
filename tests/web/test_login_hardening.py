"""Findings 4, 5, 15: sign-in timing does not reveal accounts; rate limits see the client behind
trusted proxies, count per account too, carry the instance prefix, and survive Redis going away."""

import statistics
import time

import pytest

from app import create_app
from app.enums import Role
from tests.conftest import CsrfClient, _config
from tests.factories import PASSWORD


def _login_seconds(client, email: str) -> float:
    started = time.perf_counter()
    response = client.post("/login", data={"email": email, "password": "wrong-password-1"})
    assert response.status_code == 422
    return time.perf_counter() - started


def test_unknown_email_takes_as_long_as_a_real_one(app, client, make):
    # a slow hash makes the difference measurable (production uses scrypt)
    app.config.update(PASSWORD_HASH_METHOD="pbkdf2:sha256:200000", LOGIN_RATE_LIMIT="1000 per minute",
                      LOGIN_ACCOUNT_RATE_LIMIT="1000 per minute")
    real = make.user(Role.REVIEWER, email="real@example.com")
    real.set_password(PASSWORD)
    from app.extensions import db

    db.session.commit()
    known, unknown = [], []
    for _ in range(9):  # interleaved, so load on the machine hits both alike
        known.append(_login_seconds(client, "real@example.com"))
        unknown.append(_login_seconds(client, "nobody-here@example.com"))
    known, unknown = statistics.median(known), statistics.median(unknown)
    assert known > 0.02  # the hash is really computed
    # before: an unknown e-mail answered in a small fraction of the time (no hash at all)
    assert unknown > 0.6 * known, (known, unknown)


def test_a_disabled_user_is_refused_like_a_wrong_password(client, make):
    from app.extensions import db

    user = make.user(Role.REVIEWER)
    user.is_enabled = False
    db.session.commit()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 422 and "Wrong e-mail or password." in response.get_data(as_text=True)


def _login(client, email, password="wrong-password-1", ip="203.0.113.9", forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/login", data={"email": email, "password": password}, headers=headers,
                       environ_base={"REMOTE_ADDR": ip})


def test_failed_sign_ins_are_limited_per_account_from_any_address(app, client, make):
    app.config.update(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="3 per minute")
    victim = make.user(Role.ADMIN, email="boss@example.com")
    other = make.user(Role.REVIEWER, email="other@example.com")
    for n in range(3):
        assert _login(client, "boss@example.com", ip=f"198.51.100.{n}").status_code == 422
    blocked = _login(client, "BOSS@example.com", password=PASSWORD, ip="198.51.100.77")
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # other accounts are not affected
    assert _login(client, other.email, password=PASSWORD, ip="198.51.100.3").status_code == 303
    assert victim.is_enabled


def test_successful_sign_ins_do_not_use_up_the_account_limit(app, make):
    app.config.update(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per minute")
    user = make.user(Role.REVIEWER)
    for _ in range(4):
        client = app.test_client()
        assert _login(client, user.email, password=PASSWORD).status_code == 303


def _app_with(tmp_path, **overrides):
    from tests.conftest import RUN_ID  # noqa: F401 - same queues as the test app

    app = create_app(_config(app_db_url(), upload_dir=str(tmp_path / "u"), **overrides))
    app.test_client_class = CsrfClient
    return app


def app_db_url():
    from app.extensions import db

    return db.engine.url.render_as_string(hide_password=False)


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(app, tmp_path, make):
    other = _app_with(tmp_path, LOGIN_RATE_LIMIT="2 per minute", LOGIN_ACCOUNT_RATE_LIMIT="100 per minute")
    client = other.test_client()
    with other.app_context():
        for n in range(2):
            assert _login(client, f"x{n}@example.com", forwarded=f"192.0.2.{n}").status_code == 422
        # a client cannot pick a fresh address per attempt
        assert _login(client, "x9@example.com", forwarded="192.0.2.99").status_code == 429


def test_behind_one_trusted_proxy_each_client_has_its_own_bucket(app, tmp_path, make):
    other = _app_with(tmp_path, TRUSTED_PROXY_HOPS=1, LOGIN_RATE_LIMIT="2 per minute",
                      LOGIN_ACCOUNT_RATE_LIMIT="100 per minute")
    client = other.test_client()
    with other.app_context():
        proxy = "10.0.0.2"  # every request arrives from the proxy
        for n in range(2):
            assert _login(client, f"a{n}@example.com", ip=proxy, forwarded="192.0.2.10").status_code == 422
        assert _login(client, "a3@example.com", ip=proxy, forwarded="192.0.2.10").status_code == 429
        # another user behind the same proxy still signs in
        assert _login(client, "b@example.com", ip=proxy, forwarded="192.0.2.11").status_code == 422
        # only the hop the proxy added counts: a spoofed first entry does not help the blocked client
        assert _login(client, "a4@example.com", ip=proxy, forwarded="1.2.3.4, 192.0.2.10").status_code == 429


def test_rate_limit_keys_carry_the_instance_prefix(app, tmp_path):
    from redis import Redis

    url = app.config["REDIS_URL"]
    redis = Redis.from_url(url)
    for prefix in ("certdesk-one-test", "certdesk-two-test"):
        for key in redis.scan_iter(f"*{prefix}*"):
            redis.delete(key)
    try:
        # one process serves one instance (the limiter is initialised per process)
        one = _app_with(tmp_path, RATELIMIT_STORAGE_URI=url, QUEUE_PREFIX="certdesk-one-test:",
                        LOGIN_RATE_LIMIT="2 per minute")
        for n in range(2):
            with one.app_context():
                assert _login(one.test_client(), f"p{n}@example.com", ip="192.0.2.50").status_code == 422
        with one.app_context():
            assert _login(one.test_client(), "p@example.com", ip="192.0.2.50").status_code == 429
        # the other instance on the same Redis has its own counters
        two = _app_with(tmp_path / "2", RATELIMIT_STORAGE_URI=url, QUEUE_PREFIX="certdesk-two-test:",
                        LOGIN_RATE_LIMIT="2 per minute")
        with two.app_context():
            assert _login(two.test_client(), "p@example.com", ip="192.0.2.50").status_code == 422
        assert list(redis.scan_iter("*certdesk-one-test:limits*"))
        assert list(redis.scan_iter("*certdesk-two-test:limits*"))
    finally:
        for prefix in ("certdesk-one-test", "certdesk-two-test"):
            for key in redis.scan_iter(f"*{prefix}*"):
                redis.delete(key)


@pytest.mark.filterwarnings("ignore")  # the limiter logs/warns that it fell back to memory
def test_redis_down_falls_back_to_in_memory_limits(app, tmp_path, make):
    user = make.user(Role.REVIEWER)
    other = _app_with(tmp_path, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", LOGIN_RATE_LIMIT="3 per minute",
                      LOGIN_ACCOUNT_RATE_LIMIT="100 per minute")
    client = other.test_client()
    with other.app_context():
        assert _login(client, user.email, password=PASSWORD, ip="192.0.2.70").status_code == 303
        client.post("/logout")
        # the limit still holds, in memory
        for _ in range(2):
            assert _login(client, "nobody@example.com", ip="192.0.2.70").status_code == 422
        assert _login(client, "nobody@example.com", ip="192.0.2.70").status_code == 429
    from app.extensions import limiter

    limiter._storage_dead = False  # the limiter object outlives this app; later tests start healthy
