"""`make run`: migrate, seed demo data if the database is empty, start web + worker, print logins.

Jobs need Redis. If REDIS_URL does not answer, a private redis-server is started when one is
installed; otherwise jobs run inside the web process (JOB_MODE=inline) with a warning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Development: without SECRET_KEY every process of this checkout uses the random key that the app
# creates once in instance/secret_key (never a fixed, public value).
ENV = dict(os.environ, FLASK_APP="wsgi")
ENV.setdefault("CERTDESK_ENV", "development")


def redis_ok(url: str) -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def main() -> int:
    os.chdir(ROOT)
    host, port = ENV.get("HOST", "127.0.0.1"), ENV.get("PORT", "5000")
    ENV.setdefault("BASE_URL", f"http://{host}:{port}")
    procs: list[subprocess.Popen] = []
    # Queues are named per checkout, so two CertDesk instances sharing one Redis never run each
    # other's jobs against the wrong database.
    import hashlib

    checkout = hashlib.sha256(str(ROOT).encode() + ENV.get("DATABASE_URL", "").encode()).hexdigest()[:8]
    ENV.setdefault("QUEUE_PREFIX", f"certdesk-{checkout}:")
    url = ENV.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not redis_ok(url):
        server = shutil.which("redis-server")
        if server:
            private_port = "6391"
            (ROOT / "instance").mkdir(exist_ok=True)
            procs.append(subprocess.Popen([server, "--port", private_port, "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no", "--dir", str(ROOT / "instance")],
                                          stdout=subprocess.DEVNULL, start_new_session=True))
            ENV["REDIS_URL"] = f"redis://127.0.0.1:{private_port}/0"
            for _ in range(50):
                if redis_ok(ENV["REDIS_URL"]):
                    break
                time.sleep(0.1)
            print(f"No Redis at {url}: started a private redis-server on port {private_port}.")
        else:
            ENV["JOB_MODE"] = "inline"
            print("WARNING: no Redis reachable and no redis-server installed: background jobs run inside "
                  "the web process (JOB_MODE=inline). Use Redis + `flask worker` in production.")

    if not (ENV.get("CERT_SIGNING_KEY") and ENV.get("CERT_SIGNING_CERT")):
        # Certificates are signed (PAdES): without a pair of your own, a self-signed one under instance/.
        sys.path.insert(0, str(ROOT))
        from app.insurance.signing import ensure_self_signed_pair

        key, cert = ensure_self_signed_pair(ROOT / "instance" / "signing")
        ENV["CERT_SIGNING_KEY"], ENV["CERT_SIGNING_CERT"] = str(key), str(cert)
        print(f"Signing certificates with the self-signed pair in {key.parent} (set CERT_SIGNING_KEY / "
              "CERT_SIGNING_CERT for your own).")

    flask = str(BIN / "flask")
    subprocess.run([flask, "db", "upgrade"], env=ENV, check=True)
    subprocess.run([flask, "seed-if-empty"], env=ENV, check=True)
    if ENV.get("JOB_MODE", "rq") == "rq":
        # Two web processes: rate-limit counters must live in Redis, not in each process.
        ENV.setdefault("RATELIMIT_STORAGE_URI", ENV["REDIS_URL"])
        procs.append(subprocess.Popen([flask, "worker"], env=ENV, start_new_session=True))
        web = [str(BIN / "gunicorn"), "-w", "2", "--threads", "4", "--graceful-timeout", "5", "-b", f"{host}:{port}",
               "wsgi:app"]
    else:
        web = [flask, "run", "--host", host, "--port", port, "--with-threads"]
    print(f"\nCertDesk is starting at http://{host}:{port}/  (Ctrl+C to stop)\n", flush=True)
    procs.append(subprocess.Popen(web, env=ENV, start_new_session=True))

    def stop(*_):
        # Each child runs in a session of its own (its workers, RQ's scheduler process): stop the whole
        # group, so one Ctrl+C leaves nothing behind holding the port or the scheduler lock.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for p in reversed(procs):
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(p, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    stop()
    return 1


if __name__ == "__main__":
    sys.exit(main())
