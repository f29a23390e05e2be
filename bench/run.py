"""`make bench`: CertDesk beside a bare Flask app at a real desk's size, printed as one table.

    .venv/bin/python bench/run.py [--scale 100000] [--duration 15] [--emails 1000] [--generation 1000]

1. Builds its own data set: ``--scale`` certificate requests (about 15 % open) and as many exemption
   requests whose links are overdue, for ``--scale / 10`` customers, in a database of its own: a new
   PostgreSQL database next to ``DATABASE_URL`` when that points at PostgreSQL (dropped at the end),
   else a SQLite file in a temporary directory.
2. Serves CertDesk with gunicorn (2 sync workers, rate limits in Redis as docs/deploy.md says) and,
   the same way, the bare Flask "hi" app of bench/hello.py; drives each with
   ``wrk -t2 -c16 -d<duration>s``: the staff queue's default page (signed in), one public exemption
   link page, and the bare app.
3. Times the link-expiry sweep over the ``--scale`` overdue links (in process, one call), and the
   certificate-expiry sweep over ``--scale`` active certificates whose states have all lapsed.
4. Delivers ``--emails`` outbox messages to a local SMTP server with two ``flask worker`` processes on
   the ``email`` queue, running already (steady state) and started in burst mode after the commit,
   against plain smtplib from two processes (one connection each; building each message with the
   ``email`` package, and sending one prebuilt message's bytes: the SMTP exchange alone).
5. With ``--generation N``: bench/bench_mass_generation.py's real job path for N holders (merged PDF).

wrk comes from the Debian package (``apt-get install wrk``). Throughput figures depend on the machine
and what else runs on it: compare the ratios, which are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
CHUNK = 5_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


# -- database -------------------------------------------------------------------------------------------

def make_database(tmp: Path) -> tuple[str, callable]:
    """(URL, drop) for a database of the benchmark's own."""
    import sqlalchemy as sa

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgresql"):
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    admin_url = sa.make_url(base)
    if admin_url.drivername == "postgresql":
        admin_url = admin_url.set(drivername="postgresql+psycopg")
    name = f"certdesk_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


def copies(table, template: dict, n: int, change):
    """``n`` rows like ``template`` (without its id), each passed through ``change(row, i)``."""
    base = {k: v for k, v in template.items() if k != "id"}
    for i in range(n):
        row = dict(base)
        change(row, i)
        yield row


def insert_all(db, table, rows) -> int:
    import sqlalchemy as sa

    total, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            db.session.execute(sa.insert(table), chunk)
            db.session.commit()
            total, chunk = total + len(chunk), []
    if chunk:
        db.session.execute(sa.insert(table), chunk)
        db.session.commit()
        total += len(chunk)
    return total


def build_data(app, scale: int) -> dict:
    """Customers, certificate requests and overdue exemption links, by bulk INSERTs copied from rows the
    ordinary factories made; returns what the load needs (a processor's login, one live link token)."""
    import sqlalchemy as sa

    from app.enums import ExemptionRequestStatus, RequestStatus, RequestType, Role
    from app.exemptions.services import hash_link_token
    from app.extensions import db
    from app.models import CertificateRequest, Customer, ExemptionRequest
    from tests import factories

    rng = random.Random(15)
    now = datetime.now(UTC)
    with app.app_context():
        db.create_all()
        processor = factories.user(Role.PROCESSOR, name="Bench Processor")
        template_customer = factories.customer(name="Bench Template Customer", with_policies=False)
        template_request = factories.queue_request(customer=template_customer)
        live, token = factories.exemption_request(customer=template_customer, email="buyer@bench.example.com")
        db.session.commit()
        login = (processor.email, factories.PASSWORD)

        def row_of(model, obj_id):
            return dict(db.session.execute(sa.select(model.__table__).where(model.__table__.c.id == obj_id))
                        .mappings().one())

        n_customers = max(scale // 10, 1)

        def customer_change(row, i):
            row["name"] = f"Bench Customer {i:06d} {rng.choice(['Roofing', 'Electric', 'Paving', 'Supply'])}"
            row["external_id"] = f"B-{i:06d}"
            row["contact_email"] = f"contact{i}@bench.example.com"

        insert_all(db, Customer.__table__, copies(Customer.__table__, row_of(Customer, template_customer.id),
                                                  n_customers, customer_change))
        customer_ids = db.session.scalars(sa.select(Customer.id)).all()
        statuses = ([RequestStatus.NEW] * 10 + [RequestStatus.IN_PROGRESS] * 5 + [RequestStatus.COMPLETED] * 75
                    + [RequestStatus.REJECTED] * 5 + [RequestStatus.CANCELLED] * 5)
        types = list(RequestType)

        def request_change(row, i):
            created = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
            row.update(customer_id=rng.choice(customer_ids), status=rng.choice(statuses).value,
                       type=rng.choice(types).value, holder_name=f"Holder {rng.randrange(10**6):06d} Inc",
                       created_at=created, updated_at=created, idempotency_key=None)

        log(f"inserting {scale:,} certificate requests")
        insert_all(db, CertificateRequest.__table__,
                   copies(CertificateRequest.__table__, row_of(CertificateRequest, template_request.id), scale,
                          request_change))

        def link_change(row, i):
            sent = now - timedelta(days=40 + rng.randrange(300))
            row.update(customer_id=rng.choice(customer_ids), token_hash=hash_link_token(secrets.token_urlsafe(32)),
                       link_nonce=secrets.token_hex(16), status=ExemptionRequestStatus.SENT.value, sent_at=sent,
                       expires_at=sent + timedelta(days=30), created_at=sent, email=f"buyer{i}@bench.example.com")

        log(f"inserting {scale:,} overdue exemption links")
        insert_all(db, ExemptionRequest.__table__,
                   copies(ExemptionRequest.__table__, row_of(ExemptionRequest, live.id), scale, link_change))
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        open_count = db.session.scalar(sa.select(sa.func.count()).select_from(CertificateRequest).where(
            CertificateRequest.status.in_(["new", "in_progress"])))
        log(f"{n_customers:,} customers, {scale:,} requests ({open_count:,} open), {scale:,} overdue links")
        return {"login": login, "token": token, "customers": n_customers, "open": open_count}


def session_cookie(app, email: str, password: str) -> str:
    """Sign in through the login form (CSRF token and all) and return the session cookie."""
    with app.app_context():
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page)
        response = client.post("/login", data={"email": email, "password": password,
                                               "csrf_token": csrf.group(1) if csrf else ""})
        if response.status_code != 303:
            raise SystemExit(f"bench login failed: {response.status_code} {response.get_data(as_text=True)[:300]}")
        return client.get_cookie("session").value


# -- HTTP load ------------------------------------------------------------------------------------------

class Server:
    def __init__(self, app_spec: str, env: dict, chdir: Path, workers: int = 2):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [GUNICORN, "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--chdir", str(chdir),
             "--access-logfile", "-", "--log-level", "warning", app_spec],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    error = self.proc.stderr.read().decode()[-2000:]
                    raise SystemExit(f"gunicorn {app_spec} exited: {error}") from None
                time.sleep(0.2)
        raise SystemExit(f"gunicorn {app_spec} did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wrk(url: str, duration: int, cookie: str | None = None) -> dict:
    import urllib.request

    request = urllib.request.Request(url, headers={"Cookie": f"session={cookie}"} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as first:  # fail early on a wrong page
        if first.status != 200:
            raise SystemExit(f"{url} answered {first.status}")
    cmd = ["wrk", "-t2", "-c16", f"-d{duration}s", "-s", str(ROOT / "bench" / "p95.lua"), url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: session={cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    line = dict(kv.split("=") for kv in re.search(r"BENCH (.*)", out).group(1).split())
    return {"rps": rps, "p50_ms": int(line["p50"]) / 1000, "p95_ms": int(line["p95"]) / 1000,
            "bad": int(line["non2xx"]) + int(line["errors"])}


# -- sweep ----------------------------------------------------------------------------------------------

def time_sweep(app) -> tuple[int, float]:
    from app.exemptions.services import expire_overdue_links
    from app.models.base import utcnow

    with app.app_context():
        started = time.perf_counter()
        done = expire_overdue_links(utcnow())
        return done, time.perf_counter() - started


def time_certificate_expiry(app, n: int) -> tuple[int, float]:
    """``n`` active exemption certificates whose every state has lapsed (bulk INSERTs copied from one the
    factory made, two states each), then the certificate-expiry sweep over all of them (one call)."""
    import sqlalchemy as sa

    from app.exemptions.services import expire_certificates
    from app.extensions import db
    from app.models import CertificateJurisdiction, ExemptionCertificate
    from app.models.base import utcnow
    from tests import factories

    cert_table, state_table = ExemptionCertificate.__table__, CertificateJurisdiction.__table__
    with app.app_context():
        lapsed = (datetime.now(UTC) - timedelta(days=10)).date()
        template = factories.exemption_certificate(states=(("TX", "", lapsed), ("NY", "", lapsed)))
        db.session.commit()
        row = dict(db.session.execute(sa.select(cert_table).where(cert_table.c.id == template.id)).mappings().one())
        states = [dict(r) for r in db.session.execute(sa.select(state_table).where(
            state_table.c.certificate_id == template.id)).mappings()]
        insert_all(db, cert_table, copies(cert_table, row, n - 1, lambda r, i: None))
        ids = db.session.scalars(sa.select(cert_table.c.id).where(cert_table.c.id > template.id)).all()
        insert_all(db, state_table, ({**{k: v for k, v in s.items() if k != "id"}, "certificate_id": cid}
                                     for cid in ids for s in states))
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        started = time.perf_counter()
        done = expire_certificates(utcnow())
        return done, time.perf_counter() - started


# -- e-mail ---------------------------------------------------------------------------------------------

class Sink:
    def __init__(self):
        self.count = 0
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"

    def duplicates(self, prefix: str) -> int:
        mine = [r for r in self.recipients if r.startswith(prefix)]
        return len(mine) - len(set(mine))


def smtplib_sender(port: int, n: int, prebuilt: int = 0) -> None:
    """Plain smtplib over one connection: each message built with the ``email`` package, or (``prebuilt``)
    one message's bytes sent ``n`` times: the floor of the SMTP exchange alone."""
    import smtplib
    from email.message import EmailMessage

    def build(i: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "desk@bench.example.com", f"to{i}@bench.example.com", "Hi"
        msg.set_content("A request e-mail body of a few lines.\n" * 10)
        return msg

    data = build(0).as_bytes(policy=build(0).policy.clone(linesep="\r\n"))
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for i in range(n):
            if prebuilt:
                smtp.sendmail("desk@bench.example.com", [f"to{i}@bench.example.com"], data)
            else:
                smtp.send_message(build(i))


def _queue_emails(app, n: int, prefix: str) -> None:
    from app.extensions import db
    from app.notify import queue_email

    with app.app_context():
        for i in range(n):
            queue_email(f"{prefix}{i}@bench.example.com", "notice", subject="Your certificate request",
                        context={"heading": "We received your request",
                                 "body": "A request e-mail body of a few lines.\n" * 10})
        db.session.commit()  # the delivery jobs reach Redis now


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _email_workers(env: dict, burst: bool) -> list:
    cmd = [str(Path(PYTHON).with_name("flask")), "worker", "--queues", "email"] + (["--burst"] if burst else [])
    return [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(2)]


def time_emails(app, env: dict, n: int) -> dict:
    """Seconds to deliver ``n`` outbox e-mails (written beforehand, not timed) with two ``email`` workers,
    beside plain smtplib from two processes: ``steady`` with the workers running already (the deployment:
    from the commit that enqueues the jobs to the last message received), then ``burst`` (two
    ``flask worker --burst`` started after the commit, start-up included)."""
    from aiosmtpd.controller import Controller
    from rq import Worker

    from app.extensions import jobs

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    worker_env = {**env, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(port)}
    out = {}
    try:
        started = time.perf_counter()
        senders = [subprocess.Popen([PYTHON, __file__, "--smtplib-child", str(port), str(n // 2)]) for _ in range(2)]
        for p in senders:
            p.wait()
        out["plain"] = time.perf_counter() - started
        started = time.perf_counter()
        senders = [subprocess.Popen([PYTHON, __file__, "--smtplib-child", str(port), str(n // 2), "1"])
                   for _ in range(2)]
        for p in senders:
            p.wait()
        out["floor"] = time.perf_counter() - started
        sink.count = 0

        workers = _email_workers(worker_env, burst=False)
        try:
            with app.app_context():
                queue = jobs.queue("email")
                deadline = time.time() + 60
                while len(Worker.all(queue=queue)) < 2 and time.time() < deadline:
                    time.sleep(0.1)
            _queue_emails(app, 10, "warm")  # each worker's first job (imports, connections) is not timed
            _queue_emails(app, 10, "warm-again")
            deadline = time.time() + 60
            while sink.count < 20 and time.time() < deadline:
                time.sleep(0.05)
            rss_before = sum(_rss_mb(w.pid) for w in workers)
            sink.count = 0
            from app.extensions import db
            from app.notify import queue_email

            with app.app_context():  # written, not yet committed: the timer starts at the commit
                for i in range(n):
                    queue_email(f"steady{i}@bench.example.com", "notice", subject="Your certificate request",
                                context={"heading": "We received your request",
                                         "body": "A request e-mail body of a few lines.\n" * 10})
                started = time.perf_counter()
                db.session.commit()
            deadline = time.time() + 600
            while sink.count < n and time.time() < deadline:
                time.sleep(0.005)
            out["steady"] = time.perf_counter() - started
            out["steady_delivered"] = sink.count
            out["duplicates"] = sink.duplicates("steady") + sink.duplicates("warm")
            out["rss"] = (rss_before / 2, sum(_rss_mb(w.pid) for w in workers) / 2)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(timeout=60)

        _queue_emails(app, n, "burst")
        sink.count = 0
        started = time.perf_counter()
        for w in _email_workers(worker_env, burst=True):
            w.wait()
        out["burst"] = time.perf_counter() - started
        out["burst_delivered"] = sink.count
        out["duplicates"] += sink.duplicates("burst")
        return out
    finally:
        controller.stop()


# -- generation -----------------------------------------------------------------------------------------

def time_generation(holders: int, database_url: str) -> str:
    out = subprocess.run([PYTHON, str(ROOT / "bench" / "bench_mass_generation.py"), "--job-path", "--sizes",
                          str(holders), "--modes", "merged", "--database-url", database_url],
                         capture_output=True, text=True, cwd=ROOT)
    for line in out.stdout.splitlines():  # "   1,000 merged |  req ms  +MB | worker s  run s  peak MB  ms/holder | MB"
        if re.match(r"\s*[\d,]+\s+merged\s*\|", line):
            _, request, work, _ = (part.split() for part in line.split("|"))
            return (f"request {request[0]} ms; worker {work[0]} s, run {work[1]} s, peak {work[2]} MB, "
                    f"{work[3]} ms/holder")
    return "failed: " + (out.stdout + out.stderr)[-300:].replace("\n", " ")


# -- main -----------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000, help="certificate requests (and overdue links)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk per page")
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--generation", type=int, default=0, help="holders for the mass-generation figure")
    parser.add_argument("--smtplib-child", nargs="+", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smtplib_child:
        return smtplib_sender(*args.smtplib_child)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk (Debian package)")

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    database_url, drop = make_database(tmp)
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(32),
           "CERTDESK_ENV": "development", "DEMO_DATA": "0", "UPLOAD_DIR": str(tmp / "uploads"),
           "QUEUE_PREFIX": f"certdesk-bench-{uuid.uuid4().hex[:8]}:", "LINK_RATE_LIMIT": "1000000 per minute",
           "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
           "BASE_URL": "http://127.0.0.1", "FLASK_APP": "wsgi"}
    os.environ.update({k: v for k, v in env.items() if k != "DATABASE_URL"} | {"DATABASE_URL": database_url})
    from app import create_app

    app = create_app()
    servers = []
    results: list[tuple[str, str, str, str, str]] = []
    try:
        log(f"database: {database_url.split('@')[-1]}")
        data = build_data(app, args.scale)
        cookie = session_cookie(app, *data["login"])
        bare = Server("hello:app", env, ROOT / "bench")
        servers.append(bare)
        desk = Server("wsgi:app", env, ROOT)
        servers.append(desk)
        log("wrk: bare Flask")
        hi = wrk(bare.url("/"), args.duration)
        log("wrk: staff queue")
        queue = wrk(desk.url("/dashboard/queue"), args.duration, cookie)
        log("wrk: exemption link page")
        link = wrk(desk.url(f"/portal/r/{data['token']}"), args.duration)
        log("wrk: bare Flask again")
        hi2 = wrk(bare.url("/"), args.duration)
        bare_rps = (hi["rps"] + hi2["rps"]) / 2
        results.append(("bare Flask \"hi\" (mean of before / after)", f"{bare_rps:,.0f} req/s",
                        f"p95 {max(hi['p95_ms'], hi2['p95_ms']):.1f} ms", "1", ""))
        for label, r, goal in (("staff queue, default tab", queue, "≥ 0.25, p95 ≤ 30 ms"),
                               ("public exemption link page", link, "≥ 0.40")):
            results.append((label, f"{r['rps']:,.0f} req/s", f"p95 {r['p95_ms']:.1f} ms"
                            + (f", {r['bad']} errors" if r["bad"] else ""), f"{r['rps'] / bare_rps:.3f}", goal))
        for s in servers:
            s.stop()
        servers.clear()

        log(f"sweep of {args.scale:,} overdue links")
        done, seconds = time_sweep(app)
        results.append((f"expiry sweep of {args.scale:,} overdue links", f"{done:,} expired in {seconds:.2f} s",
                        f"{done / seconds:,.0f} links/s", "", "≤ 2 s at 100,000"))

        log(f"certificate-expiry sweep of {args.scale:,} lapsed certificates")
        done, seconds = time_certificate_expiry(app, args.scale)
        results.append((f"certificate-expiry sweep of {args.scale:,} lapsed certificates (2 states each)",
                        f"{done:,} expired in {seconds:.2f} s", f"{done / seconds:,.0f} certificates/s", "",
                        "under a second a batch"))

        if args.emails:
            log(f"{args.emails:,} e-mails")
            mail = time_emails(app, env, args.emails)
            plain = mail["plain"]
            results.append((f"{args.emails:,} e-mails to a local SMTP server, 2 running `email` workers",
                            f"{mail['steady']:.2f} s ({mail['steady_delivered']:,} delivered)",
                            f"plain smtplib, 2 processes: {plain:.2f} s (prebuilt bytes: {mail['floor']:.2f} s, "
                            f"{mail['steady'] / mail['floor']:.2f}×); {mail['duplicates']} duplicates; worker RSS "
                            f"{mail['rss'][0]:.0f} → {mail['rss'][1]:.0f} MB",
                            f"{mail['steady'] / plain:.2f}×", "≤ 2×"))
            results.append(("the same, 2 `flask worker --burst` started after the commit",
                            f"{mail['burst']:.2f} s ({mail['burst_delivered']:,} delivered)",
                            "worker start-up included", f"{mail['burst'] / plain:.2f}×", ""))
        if args.generation:
            log(f"mass generation, {args.generation:,} holders")
            results.append((f"mass generation, {args.generation:,} holders, merged", time_generation(
                args.generation, database_url), "", "", "no worse than before"))
    finally:
        for s in servers:
            s.stop()
        with app.app_context():
            from app.extensions import db, jobs

            db.session.remove()
            db.engine.dispose()
            for q in jobs.all_queues():
                q.empty()
        drop()
        shutil.rmtree(tmp, ignore_errors=True)

    import platform

    print(f"\nCertDesk benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, {'PostgreSQL' if database_url.startswith('postgresql') else 'SQLite'}, "
          f"scale {args.scale:,} ({data['open']:,} open requests, {data['customers']:,} customers), "
          f"gunicorn 2 sync workers, wrk -t2 -c16 -d{args.duration}s\n")
    print("| what | CertDesk | detail | ratio | goal |\n|---|---|---|---|---|")
    for row in results:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
