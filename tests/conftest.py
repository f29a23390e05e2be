"""Shared fixtures: a real database (SQLite file or a PostgreSQL database of its own), real Redis
(queues under a prefix unique to this run), a CSRF-aware test client, logins per role, a real
SMTP server and a burst RQ worker.

TEST_DATABASE_URL selects PostgreSQL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test; each
test session creates (and drops) a database of its own next to it, so parallel runs never collide.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

os.environ.setdefault("CERTDESK_ENV", "development")  # before the app and config are imported

from app import create_app  # noqa: E402
from app.extensions import db
from config import TestConfig
from tests import factories
from tests.paths import install_read_guard, violations

install_read_guard()  # a test that reads beside the repository (../shared/...) fails: see tests/paths.py

RUN_ID = uuid.uuid4().hex[:10]


# -- services ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _reads_stay_in_the_repository():
    """Fails a test that read outside the repository, even if it swallowed the ReadOutsideRepository."""
    before = len(violations)
    yield
    assert violations[before:] == [], f"read outside the repository: {violations[before:]}"


def _require_redis(url: str) -> None:
    from redis import Redis

    try:
        Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"Redis is required for the test suite and is not reachable at {url}: {exc}", returncode=3)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    base = os.environ.get("TEST_DATABASE_URL", "")
    if base.startswith("postgresql"):
        admin_url = sa.make_url(base)
        name = f"certdesk_test_{RUN_ID}"
        try:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001
            pytest.exit(f"PostgreSQL is required (TEST_DATABASE_URL={base}) and is not usable: {exc}", returncode=3)
        yield admin_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "certdesk-test.db"
        yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def _schema(database_url):
    _require_redis(TestConfig.REDIS_URL)
    app = create_app(_config(database_url, upload_dir="/tmp/certdesk-unused"))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    yield database_url


_SIGNING: tuple[Path, Path] | None = None


def _signing_pair() -> tuple[Path, Path]:
    """The certificate signing key + self-signed certificate this test run made for itself (temp dir)."""
    global _SIGNING
    if _SIGNING is None:
        import tempfile

        from app.insurance.signing import ensure_self_signed_pair

        _SIGNING = ensure_self_signed_pair(Path(tempfile.mkdtemp(prefix=f"certdesk-signing-{RUN_ID}-")))
    return _SIGNING


def _config(database_url: str, upload_dir: str, **overrides):
    key, cert = _signing_pair()
    attrs = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_DIR": upload_dir,
        "CERT_SIGNING_KEY": str(key),
        "CERT_SIGNING_CERT": str(cert),
        "QUEUE_PREFIX": f"certdesk-test-{RUN_ID}:",
        **overrides,
    }
    return type("RunConfig", (TestConfig,), attrs)


def _wipe(app) -> None:
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(sa.text(f'DELETE FROM "{table}"'))
        from app.extensions import jobs

        for queue in jobs.all_queues():
            queue.empty()
            for registry in (queue.scheduled_job_registry, queue.failed_job_registry):
                for job_id in registry.get_job_ids():
                    registry.remove(job_id, delete_job=True)
        db.engine.dispose()


# -- app and clients ------------------------------------------------------------------------------

class CsrfClient(FlaskClient):
    """Adds a valid CSRF header to every unsafe request, as a browser page would.

    Pass ``csrf=False`` to send a request without it (the CSRF tests do)."""

    def open(self, *args, csrf: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        app = self.application
        with self.session_transaction() as sess:
            if "csrf_token" not in sess:
                sess["csrf_token"] = hashlib.sha1(os.urandom(64)).hexdigest()
            raw = sess["csrf_token"]
        return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)


@pytest.fixture
def app(_schema, tmp_path):
    app = create_app(_config(_schema, upload_dir=str(tmp_path / "uploads")))
    app.test_client_class = CsrfClient
    with app.app_context():
        yield app
    _wipe(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def htmx(client):
    """The same client, sending the headers htmx sends."""

    class Htmx:
        def get(self, url, target=None, **kw):
            return client.get(url, headers=_hx_headers(target, kw.pop("headers", None)), **kw)

        def post(self, url, target=None, **kw):
            return client.post(url, headers=_hx_headers(target, kw.pop("headers", None)), **kw)

    return Htmx()


def _hx_headers(target, extra):
    headers = {"HX-Request": "true", **(extra or {})}
    if target:
        headers["HX-Target"] = target
    return headers


class AuthActions:
    def __init__(self, client):
        self.client = client

    def login(self, user_or_email, password: str = factories.PASSWORD):
        email = getattr(user_or_email, "email", user_or_email)
        response = self.client.post("/login", data={"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return response

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def make(app):
    """Factories bound to the test database (tests/factories.py)."""
    return factories


# -- jobs and mail ------------------------------------------------------------------------------

@pytest.fixture
def run_jobs(app):
    """Run every queued job with a real RQ worker against the real Redis, then return."""
    from rq import SimpleWorker

    from app.extensions import jobs

    def run() -> int:
        db.session.commit()
        queues = jobs.all_queues()
        queued = sum(q.count for q in queues)
        worker = SimpleWorker(queues, connection=jobs.redis, serializer=jobs.serializer)
        with app.app_context():
            worker.work(burst=True)
        db.session.expire_all()
        return queued

    return run


class SmtpSink:
    def __init__(self):
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        with self.lock:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for rcpts, m in self.messages if address in rcpts]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app):
    """A real SMTP server on 127.0.0.1; the app is pointed at it."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    yield sink
    controller.stop()


# -- the browser ----------------------------------------------------------------------------------

@pytest.fixture
def live_server(app):
    """Serve the test app on a real port in a thread, for the browser tests."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["BASE_URL"] = f"http://127.0.0.1:{port}"
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required for the browser tests and is missing at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
