"""Benchmark mass certificate generation: 1,000 holders -> one merged PDF and -> a ZIP of PDFs.

    .venv/bin/python bench/bench_mass_generation.py [--holders 1000] [--baseline-runs 15] [--wos-holders 1000]
                                                    [--fallback-holders 60]

Needs no database: it renders the sample certificate of ``app.insurance.sample.sample_data`` (the same
template, fonts and data shape the app uses). Reports, all from this one run:

- baseline: the median of N single plain xhtml2pdf renders of the same certificate (HTML -> PDF, no
  stamping), i.e. what a naive one-render-per-holder loop pays per holder;
- for each mode (merged, zip): wall time of ``render_batch`` and peak RSS, each measured in a fresh
  child process (peak = the child's own max RSS + the largest of its worker processes, so worker
  processes are included); the per-certificate cost and its ratio to the baseline;
- the same for a WOS certificate, whose wording names each holder in a paragraph of its own (the
  name is stamped into lines kept for it: still no render per holder);
- the fallback path, a description naming the holder inside a sentence: every holder is rendered in
  full, on two processes (run with fewer holders by default: it costs a full render per holder);
- ZIP "numbered": each holder's number, revision, verification code and QR code stamped too, as mass
  generation issues them; ZIP "signed": the same, each member signed as it is stamped
  (``signing.Seal``; making the key pair, loading it and the CMS template inside the timing, pyHanko's
  import outside it; three members validated by pyHanko afterwards).

Every output is checked (page count / ZIP members, holder names extractable) before it is reported.

``--job-path`` measures the whole product path instead, on a scratch database (PostgreSQL with
``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres``: a database of its own is
created and dropped) with customers of ``--sizes`` linked holders (default 1k / 10k / 50k / 100k /
200k), merged and ZIP:

    .venv/bin/python bench/bench_mass_generation.py --job-path --database-url postgresql+psycopg://...

- the web request: a logged-in staff member's "Check All" POST to the generate route (htmx), in a
  fresh process after one warm-up request: its time, and how much it raises the process's peak RSS;
- the job: a real RQ ``SimpleWorker`` in a fresh process runs it (the job runs inside that process):
  wall time and the process's peak RSS;
- the output, checked in a third process: page / member count (poppler's ``pdfinfo`` for big PDFs),
  the first, middle and last holder's name in its certificate, and the signatures: how many ZIP members
  carry one (the first, middle and last validated by pyHanko), or the combined PDF's validated.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def holders(n: int):
    from app.insurance.layout import HolderInfo

    return [HolderInfo(name=f"Holder {i:04d} General Contractors of Central Texas LLC", address=f"{100 + i} Main St",
                       city="Austin", state="TX", zip_code="78701") for i in range(n)]


def child(mode: str, kind: str, count: int, out_dir: str) -> None:
    """Runs in a fresh process: one render_batch, then prints JSON with wall time and peak RSS."""
    from app.insurance import batching, certificate_data, sample, stamping

    data = sample.sample_data("coi" if kind in ("inline", "numbered", "signed") else kind)
    items = holders(count)
    data["holder"] = {**data["holder"], "name": items[0].name}
    if kind == "coi_wos":  # the wording names the holder, as build_certificate_data writes it
        wording = certificate_data.WOS_WORDING.format(holder=items[0].name)
        data["description"] = wording + "\nProject: Eastside Elementary."
    if kind == "inline":  # staff wrote the holder's name inside a sentence: every holder is rendered in full
        data["description"] = f"Roofing work for {items[0].name} at its yard, as agreed in the contract."
    out = Path(out_dir) / f"out-{mode}-{kind}.{'zip' if mode == 'zip' else 'pdf'}"
    stamps = seal = None
    if kind in ("numbered", "signed"):  # each holder's number, revision, verification code and QR code
        stamps = [stamping.IssueStamp(number=f"20261203-00001-{i:06X}", revision=1, code=f"{i:010d}",
                                 url=f"https://certdesk.example.com/verify/{i:010d}") for i in range(count)]
    if kind == "signed":
        from datetime import UTC, datetime

        from pyhanko.sign import signers

        from app.insurance import signing
    start = time.perf_counter()
    if kind == "signed":  # ... and each ZIP member signed as it is stamped (key loading in the timing)
        key, cert = signing.ensure_self_signed_pair(Path(out_dir) / "signing")
        seal = signing.Seal(signing.kept_key_signer(signers.SimpleSigner.load(str(key), str(cert))),
                            signed_at=datetime.now(UTC))
    written = batching.render_batch(data, items, out, mode=mode, stamps=stamps, seal=seal)
    wall = time.perf_counter() - start
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"written": written, "wall": wall, "self_mb": self_kb / 1024, "children_mb": children_kb / 1024,
                      "bytes": out.stat().st_size, "path": str(out)}))


def verify(result: dict, mode: str, count: int, kind: str = "coi") -> None:
    from pypdf import PdfReader

    path = Path(result["path"])
    names = [f"Holder {i:04d}" for i in (0, count // 2, count - 1)]
    if mode == "zip":
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
            assert len(members) == count, (len(members), count)
            for i in (0, count // 2, count - 1):
                text = PdfReader(io.BytesIO(zf.read(members[i]))).pages[0].extract_text()
                assert f"Holder {i:04d}" in text, (i, text[-200:])
                if kind == "signed":
                    from app.insurance.signing import signature_status

                    status = signature_status(zf.read(members[i]), trust_cert_path=path.parent / "signing" /
                                              "signing-cert.pem")
                    assert status["intact"] and status["valid"] and status["covers_whole_file"], (i, status)
    else:
        reader = PdfReader(path)
        per = len(reader.pages) // count
        assert len(reader.pages) == count * per, (len(reader.pages), count)
        for i, name in zip((0, count // 2, count - 1), names, strict=True):
            assert name in reader.pages[i * per].extract_text()
    path.unlink()


def run_child(mode: str, kind: str, count: int, out_dir: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, kind, str(count), out_dir],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - started
    result["peak_mb"] = result["self_mb"] + result["children_mb"]
    verify(result, mode, count, kind)
    return result


def baseline(runs: int) -> float:
    from app.insurance import rendering, sample

    data = sample.sample_data("coi")
    html = rendering.render_html(data)
    rendering.html_to_pdf(html)  # warm up (imports, fonts, template compile)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        rendering.html_to_pdf(rendering.render_html(data))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- the real path: web request + RQ job + database (--job-path) -----------------------------------------

BENCH_EMAIL = "bench-staff@example.com"
BENCH_PASSWORD = "bench-password-123"


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _app():
    from app import create_app

    return create_app()


def seed_child(sizes: str) -> None:
    """Holders for the biggest size once; one customer per size linked to the first N of them."""
    import sqlalchemy as sa

    from app.cli import _insurers, _policies_for
    from app.customers import policies
    from app.enums import Role
    from app.extensions import db
    from app.models import Customer, CustomerHolder, Holder, User
    from app.models.base import utcnow

    app = _app()
    counts = [int(n) for n in sizes.split(",")]
    with app.app_context():
        db.create_all()
        now = utcnow()
        app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:1000"
        staff = User(email=BENCH_EMAIL, name="Bench Staff", role=Role.REVIEWER)
        staff.set_password(BENCH_PASSWORD)
        db.session.add(staff)
        total = max(counts)
        for start in range(0, total, 5000):
            db.session.execute(sa.insert(Holder), [
                {"name": f"Holder {i:06d} General Contractors of Central Texas LLC", "email": f"certs{i}@example.com",
                 "address": f"{100 + i} Main St", "city": "Austin", "state": "TX", "zip_code": "78701",
                 "normalized_key": f"holder {i:06d} bench", "created_at": now}
                for i in range(start, min(total, start + 5000))])
        db.session.commit()
        ids = list(db.session.scalars(sa.select(Holder.id).order_by(Holder.id)))
        customers = {}
        for count in [1, *counts]:  # size 1: the warm-up request's customer
            customer = Customer(name=f"Bench {count} Roofing LLC", contact_email="office@bench.example.com",
                                address="1 Main St", city="Austin", state="TX", zip_code="78701")
            db.session.add(customer)
            db.session.flush()
            for values in _policies_for(customer, now.date(), _insurers(now)):
                policies.create_policy(customer, values, actor=None, now=now)
            for start in range(0, count, 5000):
                db.session.execute(sa.insert(CustomerHolder), [
                    {"customer_id": customer.id, "holder_id": i, "created_at": now}
                    for i in ids[start:min(count, start + 5000)]])
            db.session.commit()
            customers[count] = customer.id
    print(json.dumps(customers))


def request_child(warm_customer: str, customer_id: str, mode: str) -> None:
    """One staff "Check All" generate request, in a process that served one such request before."""
    import gc

    app = _app()
    app.config["WTF_CSRF_ENABLED"] = False  # the bench posts without reading the form first
    client = app.test_client()
    login = client.post("/login", data={"email": BENCH_EMAIL, "password": BENCH_PASSWORD})
    assert login.status_code == 303, login.status_code
    headers = {"HX-Request": "true", "HX-Target": "generation-result"}
    warm = client.post(f"/customers/{warm_customer}/generate", data={"all": "1", "mode": mode}, headers=headers)
    assert warm.status_code == 200, warm.get_data(as_text=True)[:300]
    with app.app_context():  # the warm-up run is not wanted: its job will find nothing to do
        import sqlalchemy as sa

        from app.extensions import db
        from app.models import GenerationRun

        db.session.execute(sa.delete(GenerationRun).where(GenerationRun.customer_id == int(warm_customer)))
        db.session.commit()
        db.session.remove()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    response = client.post(f"/customers/{customer_id}/generate", data={"all": "1", "mode": mode}, headers=headers)
    elapsed = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "generation-status" in body, body[:300]
    print(json.dumps({"ms": elapsed * 1000, "rss_mb": before / 1024, "growth_mb": (peak - before) / 1024}))


def worker_child() -> None:
    """A real RQ worker, burst mode: runs every queued job inside this process."""
    from rq import SimpleWorker

    from app.extensions import jobs

    app = _app()
    with app.app_context():
        worker = SimpleWorker(jobs.all_queues(), connection=jobs.redis, serializer=jobs.serializer)
        start = time.perf_counter()
        worker.work(burst=True)
        wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def verify_child(customer_id: str, count: str) -> None:
    """The run is done; its file has one certificate per holder, names where they belong. Then removed."""
    import sqlalchemy as sa
    from pypdf import PdfReader

    from app.enums import GenerationMode, GenerationStatus
    from app.extensions import db
    from app.insurance.signing import _paths as _signing_paths
    from app.insurance.signing import signature_status
    from app.models import GenerationRun
    from app.storage import get_store

    count = int(count)
    app = _app()
    with app.app_context():
        run = db.session.scalars(sa.select(GenerationRun).where(GenerationRun.customer_id == int(customer_id))
                                 .order_by(GenerationRun.id.desc())).first()
        assert run.status is GenerationStatus.DONE and run.total == count, (run.status, run.total, run.error)
        path = get_store().path(run.file_key)
        size = path.stat().st_size
        samples = (0, count // 2, count - 1)
        trust = _signing_paths()[1]
        if run.mode is GenerationMode.ZIP:
            with zipfile.ZipFile(path) as zf:
                members = zf.infolist()
                assert len(members) == count, (len(members), count)
                assert zf.testzip() is None
                for i in samples:
                    text = PdfReader(io.BytesIO(zf.read(members[i]))).pages[0].extract_text()
                    assert f"Holder {i:06d}" in text, (i, text[-200:])
                signed = sum(b"/SubFilter /ETSI.CAdES.detached" in zf.read(m) for m in members)
                for i in samples:  # pyHanko validates a signature of its own
                    status = signature_status(zf.read(members[i]), trust_cert_path=trust)
                    assert status["intact"] and status["valid"] and status["covers_whole_file"], (i, status)
        else:
            info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
            pages = int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))
            per = pages // count
            assert per and pages == per * count, (pages, count)
            for i in samples:
                text = subprocess.run(["pdftotext", "-f", str(i * per + 1), "-l", str(i * per + 1), str(path), "-"],
                                      capture_output=True, text=True, check=True).stdout
                assert f"Holder {i:06d}" in text, (i, text[-200:])
            status = signature_status(path.read_bytes(), trust_cert_path=trust) if size < 200_000_000 else {}
            signed = int(bool(status.get("intact") and status.get("valid") and status.get("covers_whole_file")))
        path.unlink()
        run_s = (run.finished_at - run.started_at).total_seconds()
    print(json.dumps({"bytes": size, "run_s": run_s, "signed": signed}))


JOB_CHILDREN = {"seed": seed_child, "request": request_child, "worker": worker_child, "verify": verify_child}


def _job_child(env: dict, *args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--job-child", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def job_path(args) -> None:
    import uuid

    import sqlalchemy as sa

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-massgen-"))
    db_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    created_db = admin = None
    if db_url.startswith("postgresql"):
        admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
        created_db = f"certdesk_bench_massgen_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{created_db}"'))
        db_url = sa.make_url(db_url).set(database=created_db).render_as_string(hide_password=False)
    prefix = f"certdesk-bench-{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "DATABASE_URL": db_url, "UPLOAD_DIR": str(tmp / "uploads"), "JOB_MODE": "rq",
           "QUEUE_PREFIX": prefix, "CERTDESK_ENV": "development", "SECRET_KEY": uuid.uuid4().hex * 2}
    sizes = [int(n) for n in args.sizes.split(",")]
    modes = args.modes.split(",")
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, "
          f"database: {sa.make_url(db_url).get_backend_name()}")
    try:
        started = time.perf_counter()
        customers = {int(k): v for k, v in _job_child(env, "seed", args.sizes).items()}
        print(f"seeded {max(sizes):,} holders and {len(customers)} customers in {time.perf_counter() - started:.0f} s")
        print(f"{'holders':>8} {'mode':>6} | {'request ms':>10} {'request +MB':>11} | {'worker s':>8} {'run s':>6} "
              f"{'worker peak MB':>14} {'ms/holder':>9} | {'output MB':>9} {'signed':>6}")
        for count in sizes:
            for mode in modes:
                req = _job_child(env, "request", str(customers[1]), str(customers[count]), mode)
                work = _job_child(env, "worker")
                out = _job_child(env, "verify", str(customers[count]), str(count))
                print(f"{count:>8,} {mode:>6} | {req['ms']:>10.0f} {req['growth_mb']:>11.1f} | {work['wall']:>8.1f} "
                      f"{out['run_s']:>6.1f} {work['peak_mb']:>14.0f} {out['run_s'] * 1000 / count:>9.3f} | "
                      f"{out['bytes'] / 1e6:>9.1f} {out.get('signed', 0):>6,}", flush=True)
        print("request ms / +MB: the web request alone, and how much it raised the peak RSS of a process that had "
              "served one request already; worker s: the worker process's burst (start to empty "
              "queue); run s: the run's own started -> finished time (ms/holder from it); worker peak MB: that "
              "process's max RSS; signed: ZIP members carrying a PAdES signature (the first, middle and last "
              "validated by pyHanko), or 1 for a combined PDF whose signature validates.")
    finally:
        if created_db:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            from redis import Redis

            redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            for key in redis.scan_iter(f"rq:*{prefix}*"):
                redis.delete(key)
        except Exception as exc:  # noqa: BLE001 - best effort
            print(f"(could not clean the bench queues: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holders", type=int, default=1000)
    parser.add_argument("--baseline-runs", type=int, default=15)
    parser.add_argument("--wos-holders", type=int, default=1000, help="0 to skip the WOS scenario")
    parser.add_argument("--fallback-holders", type=int, default=60, help="0 to skip the full-render path")
    parser.add_argument("--no-signed", dest="signed", action="store_false",
                        help="skip the ZIP with numbers + QR codes, unsigned and signed")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--job-path", action="store_true", help="the real path: web request, RQ job, database")
    parser.add_argument("--database-url", default="", help="--job-path: default a SQLite file in a temp directory")
    parser.add_argument("--sizes", default="1000,10000,50000,100000,200000", help="--job-path: holders per run")
    parser.add_argument("--modes", default="merged,zip", help="--job-path: merged, zip or both")
    parser.add_argument("--job-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, kind, count, out_dir = args.child
        child(mode, kind, int(count), out_dir)
        return
    if args.job_child:
        JOB_CHILDREN[args.job_child[0]](*args.job_child[1:])
        return
    if args.job_path:
        job_path(args)
        return

    print(f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    base = baseline(args.baseline_runs)
    print(f"baseline: one plain xhtml2pdf render of the certificate, median of {args.baseline_runs}: "
          f"{base * 1000:.1f} ms")
    scenarios = [("merged", "coi", args.holders), ("zip", "coi", args.holders)]
    if args.signed:
        scenarios += [("zip", "numbered", args.holders), ("zip", "signed", args.holders)]
    if args.wos_holders:
        scenarios += [("merged", "coi_wos", args.wos_holders), ("zip", "coi_wos", args.wos_holders)]
    if args.fallback_holders:
        scenarios += [("merged", "inline", args.fallback_holders), ("zip", "inline", args.fallback_holders)]
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-") as out_dir:
        print(f"{'mode':7} {'kind':8} {'holders':>7} {'wall s':>7} {'process s':>9} {'peak MB':>8} "
              f"{'output MB':>9} {'ms/cert':>8} {'x baseline':>10}")
        for mode, kind, count in scenarios:
            r = run_child(mode, kind, count, out_dir)
            per = r["wall"] / count
            print(f"{mode:7} {kind:8} {count:>7} {r['wall']:>7.2f} {r['process_wall']:>9.2f} {r['peak_mb']:>8.0f} "
                  f"{r['bytes'] / 1e6:>9.1f} {per * 1000:>8.2f} {per / base:>10.3f}")
    print("wall s = render_batch only; process s = the whole child process (interpreter start and imports "
          "included); peak MB = max RSS of the child plus its largest worker process.")


if __name__ == "__main__":
    main()
