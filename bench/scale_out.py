"""Scale-out proof: 2 gunicorn processes x 2 sync workers + 3 RQ workers on PostgreSQL and Redis, driven by
200 concurrent clients for 60 s, then a check that nothing was lost and the job backlog drained.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scale_out.py [--scale 100000] [--clients 200] [--duration 60] [--think 1.0,3.0]

What it runs (everything on this machine, each in its own process, as docs/deploy.md lays it out):

- a database of its own next to ``DATABASE_URL`` (created, filled and dropped): ``--scale`` certificate
  requests (~15 % open) and as many exemption links for ``--scale / 10`` customers, as bench/run.py
  builds them; the overdue links are marked expired and the open requests as already seen by the
  auto-issue job (what a real desk did long ago), so the workers start with no artificial backlog;
  then one fresh exemption link per expected link completion;
- two ``gunicorn -w 2`` processes (sync workers) on two ports, as two web hosts behind a balancer;
- three ``flask worker`` processes: two on ``pdf,default`` (fork per job), one on ``email``
  (no fork), e-mail going to a local SMTP server (aiosmtpd) that accepts everything;
- ``--clients`` asyncio clients (aiohttp), each bound to one of the two web processes (round robin) and
  to one kind of work, a third of them each:
  * **queue**: a signed-in processor viewing the staff queue (default tab, the WOS tab, the COI / POI
    tab, newest first, or the next page of what it saw), one GET per view;
  * **link**: a customer completing a fresh exemption link: GET the form, think, POST it with its CSRF
    token, the answers and a one-page PDF upload (expects the 303 to the thank-you page);
  * **api**: an integration posting a COI request to ``POST /api/v1/certificate-requests`` with a
    bearer token made by ``flask create-api-token`` (expects 201);
  each client waits a think time drawn uniformly from ``--think`` (seconds) after every response.
- After ``--duration`` seconds the clients stop (in-flight requests finish); the script then checks that
  every 201 and every 303 left its row in the database (0 lost), and waits until every RQ queue is empty
  and no job is running: the backlog drain time. Failed jobs are counted.

The link rate limit (per client address) is raised for the run, since every client here comes from
127.0.0.1; everything else is the app's default configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
FLASK = str(Path(PYTHON).with_name("flask"))

_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
desk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(desk)
log = desk.log

QUEUE_VIEWS = ("/dashboard/queue", "/dashboard/queue?tab=wos", "/dashboard/queue?tab=coi",
               "/dashboard/queue?sort=created&dir=desc")
HOLDER = {"name": "Metro Transit Authority", "email": "risk@metro.example.gov", "phone": "+1 512 555 0110",
          "address": "1 Transit Way", "city": "Austin", "state": "TX", "zip": "78701"}
PROJECT = {"name": "Depot canopy", "location": "1 Transit Way", "duration": "90 days",
           "contract_details": "Contract MT-26-4"}


# -- data ----------------------------------------------------------------------------------------------------

def fresh_links(app, n: int) -> list[tuple[int, str]]:
    """``n`` new exemption links (status sent, a month to live) for distinct customers: [(id, token)]."""
    import sqlalchemy as sa

    from app.enums import ExemptionRequestStatus
    from app.exemptions.services import hash_link_token, link_token
    from app.extensions import db
    from app.models import Customer, ExemptionRequest

    now = datetime.now(UTC)
    with app.app_context():
        template = dict(db.session.execute(sa.select(ExemptionRequest.__table__).order_by(
            ExemptionRequest.id).limit(1)).mappings().one())
        customers = db.session.scalars(sa.select(Customer.id).order_by(Customer.id).limit(n)).all()
        rows = []
        for i in range(n):
            nonce = secrets.token_hex(16)
            rows.append({**{k: v for k, v in template.items() if k != "id"},
                         "customer_id": customers[i % len(customers)], "email": f"signer{i}@scale.example.com",
                         "token_hash": f"new:{nonce}", "link_nonce": nonce,
                         "status": ExemptionRequestStatus.SENT.value, "sent_at": now, "created_at": now,
                         "opened_at": None, "expires_at": now + timedelta(days=30), "reminders_sent": []})
        ids = []
        for chunk in (rows[i:i + 1000] for i in range(0, n, 1000)):
            ids += db.session.scalars(sa.insert(ExemptionRequest).returning(ExemptionRequest.id,
                                                                            sort_by_parameter_order=True), chunk).all()
        links = []
        for row_id, row in zip(ids, rows, strict=True):
            links.append((row_id, link_token(row_id, row["link_nonce"])))
        db.session.execute(sa.update(ExemptionRequest.__table__).where(
            ExemptionRequest.__table__.c.id == sa.bindparam("rid")).values(token_hash=sa.bindparam("th")),
            [{"rid": row_id, "th": hash_link_token(token)} for row_id, token in links])
        db.session.commit()
        return links


def expire_links(app) -> tuple[int, float]:
    """The data set's overdue links, expired in one UPDATE (the expiry sweep is bench/run.py's figure)."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import ExemptionRequest

    started = time.perf_counter()
    with app.app_context():
        done = db.session.execute(sa.update(ExemptionRequest.__table__).where(
            ExemptionRequest.__table__.c.status.in_(["sent", "opened"]),
            ExemptionRequest.__table__.c.expires_at < datetime.now(UTC)).values(status="expired")).rowcount
        db.session.commit()
    return done, time.perf_counter() - started


def settle_open_requests(app) -> int:
    """The copied open requests were never looked at by the auto-issue job; at a real desk it decided
    them long ago. Record that decision (sent to the manual queue), so the workers' repair sweep does not
    start with thousands of auto-issue jobs that are an artefact of the data set."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import CertificateRequest

    with app.app_context():
        done = db.session.execute(sa.update(CertificateRequest).where(
            CertificateRequest.status == "new", CertificateRequest.manual_reason == "").values(
            needs_manual=True, manual_reason="Bench data: waiting for staff").execution_options(
            synchronize_session=False)).rowcount
        db.session.commit()
        return done


def api_setup(app, env: dict) -> tuple[str, int]:
    """A customer user of an eligible customer and a token for it from ``flask create-api-token``."""
    import sqlalchemy as sa

    from app.enums import Role
    from app.extensions import db
    from app.models import Customer
    from tests import factories

    with app.app_context():
        customer = db.session.scalar(sa.select(Customer).where(Customer.name == "Bench Template Customer"))
        user = factories.user(Role.CUSTOMER, email="integration@scale.example.com", customer=customer)
        db.session.commit()
        customer_id = user.customer_id
    out = subprocess.run([FLASK, "create-api-token", "--email", "integration@scale.example.com", "--name", "scale"],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1], customer_id


def staff_cookies(app, n: int) -> list[str]:
    """``n`` processors, each signed in through the login form."""
    from app.enums import Role
    from app.extensions import db
    from tests import factories

    with app.app_context():
        users = [factories.user(Role.PROCESSOR, email=f"processor{i}@scale.example.com", name=f"Processor {i}")
                 for i in range(n)]
        db.session.commit()
        emails = [u.email for u in users]
    return [desk.session_cookie(app, email, factories.PASSWORD) for email in emails]


class Server(desk.Server):
    """gunicorn as bench/run.py starts it, but its error log goes to a file (a pipe nobody reads fills up
    under load and stalls the master), so that worker timeouts can be counted afterwards."""

    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        self.port = desk.free_port()
        with open(log_path, "w") as errors:
            self.proc = subprocess.Popen(
                [desk.GUNICORN, "-w", "2", "-b", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
                 "--log-level", "warning", "wsgi:app"], env=env, stdout=subprocess.DEVNULL, stderr=errors)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                desk.socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"gunicorn exited: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def worker_timeouts(self) -> int:
        return self.log_path.read_text(errors="replace").count("WORKER TIMEOUT")


# -- load ------------------------------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
NEXT = re.compile(r'<a rel="next" href="([^"]+)"')


class Results:
    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.created_requests: list[int] = []
        self.completed_links: list[int] = []
        self.links_short = 0

    def ok(self, kind: str, seconds: float):
        self.latency[kind].append(seconds)

    def bad(self, kind: str, seconds: float, what: str):
        self.latency[kind].append(seconds)
        self.errors[kind].append(what)


async def timed(session, kind, results, method, url, **kw):
    started = time.perf_counter()
    try:
        async with session.request(method, url, allow_redirects=False, **kw) as response:
            body = await response.text()
            return response.status, body, response.headers, time.perf_counter() - started
    except Exception as exc:  # a refused connection, a timeout: an error of this kind
        results.bad(kind, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"[:200])
        return None, "", {}, 0.0


async def queue_client(base, cookie, think, stop_at, results, rng):
    import aiohttp

    async with aiohttp.ClientSession(cookies={"session": cookie}, timeout=aiohttp.ClientTimeout(total=60)) as s:
        next_url = None
        while time.monotonic() < stop_at:
            url = next_url if next_url and rng.random() < 0.3 else rng.choice(QUEUE_VIEWS)
            status, body, _, seconds = await timed(s, "queue view", results, "GET", base + url)
            if status == 200 and 'id="queue-results"' in body:
                results.ok("queue view", seconds)
                found = NEXT.search(body)
                next_url = found.group(1).replace("&amp;", "&") if found else None
            elif status is not None:
                results.bad("queue view", seconds, f"{status} {url}")
            await asyncio.sleep(rng.uniform(*think))


async def link_client(base, links, think, stop_at, results, rng, form, pdf):
    import aiohttp

    while time.monotonic() < stop_at:
        if not links:
            results.links_short += 1
            return
        request_id, token = links.pop()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),  # a new visitor
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # (keeps 127.0.0.1's)
            status, body, _, seconds = await timed(s, "link form GET", results, "GET", f"{base}/portal/r/{token}")
            found = CSRF.search(body) if status == 200 else None
            if not found:
                if status is not None:
                    results.bad("link form GET", seconds, f"{status} no form")
                await asyncio.sleep(rng.uniform(*think))
                continue
            results.ok("link form GET", seconds)
            await asyncio.sleep(rng.uniform(*think))
            data = aiohttp.FormData()
            for key, value in {**form, "csrf_token": found.group(1) or found.group(2)}.items():
                data.add_field(key, value)
            data.add_field("document", io.BytesIO(pdf), filename="certificate.pdf", content_type="application/pdf")
            status, body, headers, seconds = await timed(s, "link POST", results, "POST",
                                                         f"{base}/portal/r/{token}", data=data)
            if status == 303:
                results.ok("link POST", seconds)
                results.completed_links.append(request_id)
            elif status is not None:
                results.bad("link POST", seconds, f"{status} {body[:120]!r}")
        await asyncio.sleep(rng.uniform(*think))


async def api_client(base, token, customer_id, think, stop_at, results, rng, n):
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as s:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            body = {"customer_id": customer_id, "type": "coi", "holder": {**HOLDER, "name": f"Holder {n}-{i}"},
                    "description": "Canopy work", "project": PROJECT, "instructions": ""}
            status, text, _, seconds = await timed(s, "API POST", results, "POST",
                                                   f"{base}/api/v1/certificate-requests", json=body,
                                                   headers={"Idempotency-Key": f"scale-{n}-{i}"})
            if status == 201:
                results.ok("API POST", seconds)
                results.created_requests.append(int(re.search(r'"id":\s*(\d+)', text).group(1)))
            elif status is not None:
                results.bad("API POST", seconds, f"{status} {text[:120]!r}")
            await asyncio.sleep(rng.uniform(*think))


async def warm_up(bases, cookie, links, api_token, customer_id):
    """What a running site has done already: every web worker has served each kind of page once."""
    import aiohttp

    results = Results()
    async with aiohttp.ClientSession(cookies={"session": cookie}, timeout=aiohttp.ClientTimeout(total=120)) as s:
        for base in bases:
            for _ in range(6):  # a few each, so both of a process's workers get them
                await asyncio.gather(*(timed(s, "warm", results, "GET", base + url) for url in QUEUE_VIEWS))
                await timed(s, "warm", results, "GET", f"{base}/portal/r/{links[0][1]}")
                await timed(s, "warm", results, "GET", f"{base}/api/v1/certificate-requests",
                            headers={"Authorization": f"Bearer {api_token}"})
    return results


async def drive(bases, args, cookies, links, api_token, customer_id, form, pdf) -> tuple[Results, float]:
    results = Results()
    started = time.monotonic()
    stop_at = started + args.duration
    tasks = []
    for n in range(args.clients):
        rng = random.Random(n)
        base = bases[n % len(bases)]
        kind = n % 3
        await asyncio.sleep(0.005)  # clients arrive over the first second, not in one instant
        if kind == 0:
            tasks.append(queue_client(base, cookies[n % len(cookies)], args.think, stop_at, results, rng))
        elif kind == 1:
            tasks.append(link_client(base, links, args.think, stop_at, results, rng, form, pdf))
        else:
            tasks.append(api_client(base, api_token, customer_id, args.think, stop_at, results, rng, n))
    await asyncio.gather(*tasks)
    return results, time.monotonic() - started


# -- after the run -------------------------------------------------------------------------------------------

def stored(app, results: Results) -> tuple[int, int]:
    """(API requests found of those answered 201, link certificates found of those answered 303)."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import CertificateRequest, ExemptionCertificate

    with app.app_context():
        found_requests = found_certs = 0
        for chunk in (results.created_requests[i:i + 1000] for i in range(0, len(results.created_requests), 1000)):
            found_requests += db.session.scalar(sa.select(sa.func.count()).select_from(CertificateRequest).where(
                CertificateRequest.id.in_(chunk)))
        for chunk in (results.completed_links[i:i + 1000] for i in range(0, len(results.completed_links), 1000)):
            found_certs += db.session.scalar(sa.select(sa.func.count(sa.distinct(ExemptionCertificate.request_id)))
                                             .where(ExemptionCertificate.request_id.in_(chunk)))
        db.session.remove()
        return found_requests, found_certs


def backlog(app) -> tuple[int, int, int]:
    """(jobs queued, jobs running, jobs failed) over every queue."""
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from app.extensions import jobs

    with app.app_context():
        queued = running = failed = 0
        for q in jobs.all_queues():
            queued += q.count
            running += StartedJobRegistry(queue=q).count
            failed += FailedJobRegistry(queue=q).count
        return queued, running, failed


def queued_jobs(app) -> dict[str, int]:
    """The queued jobs by function (what the backlog is made of)."""
    from collections import Counter

    from app.extensions import jobs

    with app.app_context():
        names = Counter()
        for q in jobs.all_queues():
            for job in q.get_jobs():
                names[f"{q.name.rsplit(':', 1)[-1]}: {job.func_name.rsplit('.', 1)[-1]}"] += 1
        return dict(names.most_common())


def outcome(app, results: Results) -> dict:
    """What the jobs did with the run's requests: auto-issued, waiting for staff, and e-mails sent."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import CertificateRequest, OutboxMessage

    with app.app_context():
        statuses = dict(db.session.execute(
            sa.select(CertificateRequest.status, sa.func.count()).where(
                CertificateRequest.id.in_(results.created_requests[:50_000] or [0]))
            .group_by(CertificateRequest.status)).all())
        mail = dict(db.session.execute(sa.select(OutboxMessage.status, sa.func.count())
                                       .group_by(OutboxMessage.status)).all())
        db.session.remove()
        return {"requests": {str(k.value): v for k, v in statuses.items()},
                "outbox": {str(k.value): v for k, v in mail.items()}}


# -- CPU accounting (the machine is shared: who got the cores during the load) --------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, *, children: bool) -> float:
    """CPU seconds of one process (with its reaped children's, e.g. RQ's work-horses), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + (cutime + cstime if children else 0)) / TICK


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _backends(database: str) -> list[int]:
    """PostgreSQL server processes serving ``database`` (its title names the database)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres:") and f" {database} ".encode() in title:
                pids.append(int(entry.name))
    return pids


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in
                                                             Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def cpu_snapshot(servers, workers, database: str) -> dict[str, float]:
    web = [c for s in servers for c in _children(s.proc.pid)]
    own = os.times()
    return {
        "web": sum(_proc_cpu(p, children=False) for p in web),
        "jobs": sum(_proc_cpu(w.pid, children=True) for w in workers),
        "postgresql": sum(_proc_cpu(p, children=False) for p in _backends(database)),
        "load generator": own.user + own.system,
        "machine": _machine_busy(),
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# -- main ------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--think", default="1.0,3.0", help="think time range in seconds, uniform: low,high")
    parser.add_argument("--web", type=int, default=2, help="gunicorn processes (2 sync workers each)")
    parser.add_argument("--drain-timeout", type=int, default=900)
    args = parser.parse_args()
    args.think = tuple(float(x) for x in args.think.split(","))
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        raise SystemExit("point DATABASE_URL at a PostgreSQL server (a database of the run's own is created there)")

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-scale-"))
    database_url, drop = desk.make_database(tmp)
    from aiosmtpd.controller import Controller

    sink = desk.Sink()
    smtp_port = desk.free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(32),
           "CERTDESK_ENV": "development", "DEMO_DATA": "0", "UPLOAD_DIR": str(tmp / "uploads"),
           "QUEUE_PREFIX": f"certdesk-scale-{uuid.uuid4().hex[:8]}:", "LINK_RATE_LIMIT": "1000000 per minute",
           "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
           "BASE_URL": "http://127.0.0.1", "FLASK_APP": "wsgi", "MAIL_SERVER": "127.0.0.1",
           "MAIL_PORT": str(smtp_port), "MAIL_USE_TLS": "false"}
    os.environ.update(env)
    from app import create_app

    app = create_app()
    servers, workers = [], []
    report: list[str] = []
    try:
        log(f"database: {database_url.split('@')[-1]}")
        data = desk.build_data(app, args.scale)
        log("marking the overdue links expired before the load (what the sweep did long ago at a real desk)")
        expired, sweep_s = expire_links(app)
        log(f"{settle_open_requests(app):,} open requests marked as decided by the auto-issue job")
        cookies = staff_cookies(app, 5)
        api_token, customer_id = api_setup(app, env)
        per_link_client = int(args.duration / (2 * args.think[0])) + 2
        n_links = (args.clients // 3 + 1) * per_link_client
        log(f"creating {n_links:,} fresh exemption links")
        links = fresh_links(app, n_links)
        random.Random(1).shuffle(links)
        from tests import factories

        form = factories.exemption_form()
        pdf = factories.tiny_pdf("Scale-out exemption certificate")
        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()
            queued, running, failed = backlog(app)
        log(f"jobs before the load: {queued} queued (the links' expiry jobs are scheduled, not queued)")

        for _ in range(args.web):
            servers.append(Server(env, tmp / f"gunicorn{len(servers)}.log"))
        for n, queues in enumerate(("pdf,default", "pdf,default", "email")):
            with open(tmp / f"worker{n}.log", "w") as worker_log:
                workers.append(subprocess.Popen([FLASK, "worker", "--queues", queues], env=env, cwd=ROOT,
                                                stdout=subprocess.DEVNULL, stderr=worker_log))
        time.sleep(3)
        load_before = os.getloadavg()
        log(f"{args.clients} clients for {args.duration} s (think {args.think[0]}-{args.think[1]} s); "
            f"load average {load_before[0]:.1f}")
        asyncio.run(warm_up([s.url("") for s in servers], cookies[0], links, api_token, customer_id))
        load_before = os.getloadavg()
        database = database_url.rsplit("/", 1)[-1]
        cpu_before = cpu_snapshot(servers, workers, database)
        results, elapsed = asyncio.run(drive([s.url("") for s in servers], args, cookies, links, api_token,
                                             customer_id, form, pdf))
        ended = time.monotonic()
        load_after = os.getloadavg()
        cpu_after = cpu_snapshot(servers, workers, database)
        cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}
        queued_end, running_end, _ = backlog(app)
        made_of = queued_jobs(app)
        log(f"load done in {elapsed:.1f} s; {queued_end} jobs queued, {running_end} running; draining")
        while True:
            queued, running, failed = backlog(app)
            if queued == 0 and running == 0:
                break
            if time.monotonic() - ended > args.drain_timeout:
                break
            time.sleep(0.5)
        drain = time.monotonic() - ended
        jobs_cpu = cpu_snapshot(servers, workers, database)["jobs"] - cpu_before["jobs"]  # the drain's too
        found_requests, found_certs = stored(app, results)
        done = outcome(app, results)

        total = sum(len(v) for v in results.latency.values())
        errors = sum(len(v) for v in results.errors.values())
        report.append(f"CertDesk scale-out, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
                      f"PostgreSQL, scale {args.scale:,} ({data['open']:,} open requests, {expired:,} overdue links "
                      f"marked expired beforehand in {sweep_s:.1f} s)")
        report.append(f"{args.web} gunicorn x 2 sync workers, 3 flask workers (pdf,default x2 + email), "
                      f"{args.clients} clients ({len(range(0, args.clients, 3))} queue / "
                      f"{len(range(1, args.clients, 3))} link / {len(range(2, args.clients, 3))} API), "
                      f"think {args.think[0]}-{args.think[1]} s uniform, {args.duration} s; load average "
                      f"{load_before[0]:.1f} before, {load_after[0]:.1f} at the end (1-minute)")
        report.append("")
        report.append("| kind | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |")
        report.append("|---|---|---|---|---|---|---|---|")
        for kind in ("queue view", "link form GET", "link POST", "API POST"):
            values = results.latency.get(kind, [])
            report.append(f"| {kind} | {len(values):,} | {len(values) / elapsed:.1f} | "
                          f"{percentile(values, 50) * 1000:.0f} | {percentile(values, 95) * 1000:.0f} | "
                          f"{percentile(values, 99) * 1000:.0f} | {max(values, default=0) * 1000:.0f} | "
                          f"{len(results.errors.get(kind, []))} |")
        every = [v for values in results.latency.values() for v in values]
        report.append(f"| all | {total:,} | {total / elapsed:.1f} | {percentile(every, 50) * 1000:.0f} | "
                      f"{percentile(every, 95) * 1000:.0f} | {percentile(every, 99) * 1000:.0f} | "
                      f"{max(every, default=0) * 1000:.0f} | {errors} |")
        report.append("")
        report.append(f"- API requests answered 201: {len(results.created_requests):,}, stored: {found_requests:,} "
                      f"(lost: {len(results.created_requests) - found_requests}); outcome after the jobs: "
                      f"{done['requests']}")
        report.append(f"- links completed (303): {len(results.completed_links):,}, certificates stored: "
                      f"{found_certs:,} (lost: {len(results.completed_links) - found_certs})"
                      + (f"; {results.links_short} link clients ran out of links" if results.links_short else ""))
        report.append(f"- jobs at the end of the load: {queued_end:,} queued, {running_end} running; drained "
                      f"{'in' if queued == running == 0 else 'NOT within'} {drain:.1f} s; failed jobs: {failed}")
        report.append(f"- queued at the end of the load, by job: {made_of}; gunicorn worker timeouts (30 s): "
                      f"{sum(s.worker_timeouts() for s in servers)}")
        others = cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")
        report.append(f"- CPU seconds during the {elapsed:.0f} s of load ({elapsed * os.cpu_count():.0f} available, "
                      f"{cpu['machine']:.0f} used): web {cpu['web']:.1f}, jobs {cpu['jobs']:.1f}, PostgreSQL for "
                      f"this database {cpu['postgresql']:.1f}, load generator {cpu['load generator']:.1f}, "
                      f"everything else on the machine (other sessions) {others:.1f}")
        served = max(total - errors, 1)
        web_ms = (cpu["web"] + cpu["postgresql"]) / served * 1000
        all_ms = (cpu["web"] + cpu["postgresql"] + jobs_cpu) / served * 1000
        report.append(f"- CPU per request: web + PostgreSQL {web_ms:.0f} ms, with the jobs it caused (until drained, "
                      f"{jobs_cpu:.1f} s) {all_ms:.0f} ms; "
                      f"with the {os.cpu_count()} cores to itself this layout would serve this mix at about "
                      f"{os.cpu_count() * 1000 / all_ms:.0f} req/s")
        report.append(f"- outbox after the drain: {done['outbox']}; the SMTP server accepted {sink.count:,} messages")
        for kind, what in results.errors.items():
            report.append(f"- {kind} errors, first: {what[:3]}")
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        for s in servers:
            s.stop()
        controller.stop()
        with app.app_context():
            from app.extensions import db, jobs

            db.session.remove()
            db.engine.dispose()
            for q in jobs.all_queues():
                q.empty()
        drop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(report))
    print(f"\nmean latency {statistics.mean(every) * 1000:.0f} ms" if every else "")


if __name__ == "__main__":
    main()
