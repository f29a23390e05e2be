"""Fault drills against real processes: a private Redis this test starts and stops (never the shared
one), a real SMTP server switched off, to 451 and back on, and ``flask worker`` subprocesses with the
test's configuration, killed with SIGKILL when the drill says so."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.extensions import db, jobs
from tests.conftest import SmtpSink, free_port

REPO = Path(__file__).resolve().parents[2]


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from redis import Redis

        for _ in range(100):
            try:
                Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except Exception:  # noqa: BLE001
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        """Stop it; with no persistence it comes back empty, as Redis does after a restart."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(app, tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    shared_url = app.config["REDIS_URL"]
    app.config.update(REDIS_URL=redis.url, SWEEP_INTERVAL_SECONDS=2, MAIL_CLAIM_TIMEOUT_SECONDS=5)
    jobs._redis = None
    yield redis
    redis.stop()
    app.config["REDIS_URL"] = shared_url
    jobs._redis = None


class SwitchableSmtp:
    """The real SMTP server of tests/conftest.py on a fixed port that can be switched off and on, or
    made to answer ``451`` (a temporary failure) to every message."""

    def __init__(self) -> None:
        self.sink = SmtpSink()
        self.port = free_port()
        self.controller = None
        self.delay = 0.0

    def up(self, answer_451: bool = False) -> None:
        import asyncio

        from aiosmtpd.controller import Controller

        self.down()
        sink, delay = self.sink, self.delay

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if answer_451:
                    return "451 4.3.0 Try again later"
                if delay:
                    await asyncio.sleep(delay)
                return await sink.handle_DATA(server, session, envelope)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def switchable_smtp(app):
    smtp = SwitchableSmtp()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)
    yield smtp
    smtp.down()


class Workers:
    def __init__(self, app, log_dir: Path) -> None:
        self.app = app
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def env(self, **extra) -> dict:
        c = self.app.config
        env = {**os.environ, "FLASK_APP": "wsgi", "CERTDESK_ENV": "development", "SECRET_KEY": self.app.secret_key,
               "DATABASE_URL": c["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": c["REDIS_URL"],
               "QUEUE_PREFIX": c["QUEUE_PREFIX"], "UPLOAD_DIR": c["UPLOAD_DIR"], "BASE_URL": c["BASE_URL"],
               "MAIL_SERVER": c["MAIL_SERVER"], "MAIL_PORT": str(c["MAIL_PORT"]), "JOB_MODE": "rq",
               "SWEEP_INTERVAL_SECONDS": str(c["SWEEP_INTERVAL_SECONDS"]),
               "MAIL_CLAIM_TIMEOUT_SECONDS": str(c.get("MAIL_CLAIM_TIMEOUT_SECONDS") or 900),
               "MAIL_RETRY_DELAYS": ",".join(str(s) for s in c.get("MAIL_RETRY_DELAYS") or ()),
               "RATELIMIT_STORAGE_URI": "memory://", "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"}
        env.update(extra)
        return env

    def start(self, **extra) -> subprocess.Popen:
        db.session.commit()
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "flask", "worker"], cwd=REPO, env=self.env(**extra),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its job process (its own process group, started above)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def log_tail(self, chars: int = 4000) -> str:
        """What the workers logged, without per-job noise (for a failing drill's message)."""
        lines = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if line[:2].isdigit() and "Successfully completed" not in line and "kept for" not in line:
                    lines.append(f"{path.name}: {line}")
        return "\n".join(lines)[-chars:]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)


@pytest.fixture
def workers(app, tmp_path):
    w = Workers(app, tmp_path)
    yield w
    w.stop_all()


def wait_for(predicate, timeout: float, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        db.session.commit()
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()
