"""Mass certificate generation: one customer, many holders, a ZIP of PDFs or one combined PDF.

``start_generation`` checks the choice and stores a GenerationRun (status ``queued``) whose job is
enqueued after the commit. The job calls ``run_generation``: it builds the certificate data once,
lets ``pdf.render_batch`` stream every holder's certificate to a file on disk, stores the result
for GENERATED_FILE_DAYS, and (when asked) records each certificate in *sent certificates* and
e-mails each holder its own PDF (one outbox message per holder, at most once per run).

Two sweep steps keep it honest: files past their time are removed, and runs a dead worker left
``queued`` / ``running`` are enqueued again (the job is idempotent).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from app.activity import record
from app.customers.holders import linked_holders
from app.enums import (
    GENERATION_TRANSITIONS,
    GenerationMode,
    GenerationStatus,
    ImportStatus,
    InvalidTransition,
    RequestType,
    can_transition,
)
from app.extensions import db
from app.models import Customer, CustomerHolder, GenerationRun, Holder, ImportRun, SentCertificate, User
from app.queue import defer
from app.storage import get_store
from app.sweeper import register_sweep

GENERATE_JOB = "app.customers.holder_jobs.generate_certificates"
QUEUED_GRACE = timedelta(minutes=5)    # a queued run nobody picked up after this is enqueued again
RUNNING_GRACE = timedelta(minutes=15)  # a running run without progress for this long lost its worker
MAX_ATTEMPTS = 3

Progress = Callable[[int, int], None]


class GenerationError(ValueError):
    """The generation cannot start or run; the message is safe to show."""


def transition(run: GenerationRun, to: GenerationStatus, *, actor: User | None, now: datetime,
               message: str = "") -> None:
    if not can_transition(GENERATION_TRANSITIONS, run.status, to):
        raise InvalidTransition(run.status, to)
    run.status = to
    run.updated_at = now
    if to is GenerationStatus.RUNNING:
        run.started_at = now
    if to in (GenerationStatus.DONE, GenerationStatus.FAILED):
        run.finished_at = now
    if to is GenerationStatus.FAILED:
        run.error = message[:500]
    record("generation_run", run.id, f"generation_{to.value}", actor=actor, customer_id=run.customer_id, now=now,
           message=message or f"{run.total} certificates, {run.mode.label.lower()}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "holder"


def start_generation(customer: Customer, *, holder_ids: list[int] | None, mode: GenerationMode | str,
                     kind: RequestType | str = RequestType.COI, record_sent: bool = False,
                     email_holders: bool = False, actor: User | None, now: datetime) -> GenerationRun:
    """Check the choice and queue a run. ``holder_ids=None`` means every linked holder."""
    from app.insurance.pdf import CertificateDataError, HolderInfo, build_certificate_data

    try:
        mode = GenerationMode(mode)
    except ValueError as exc:
        raise GenerationError("Choose Individual PDFs (ZIP) or One combined PDF.") from exc
    try:
        kind = RequestType(kind)
    except ValueError as exc:
        raise GenerationError("Choose the kind of certificate.") from exc
    if not customer.is_active:
        raise GenerationError(f"{customer.name} is {customer.status}: certificates are issued for active "
                              "customers only.")
    links = linked_holders(customer.id)
    linked = {link.holder_id: link.holder for link in links}
    if holder_ids is None:
        chosen = [link.holder_id for link in links]
    else:
        unknown = [h for h in holder_ids if h not in linked]
        if unknown:
            raise GenerationError("Some of the chosen holders are not additional interests of this customer.")
        chosen = list(dict.fromkeys(holder_ids))
    if not chosen:
        raise GenerationError("Choose at least one holder." if links else
                              "This customer has no additional interests yet: add or import holders first.")
    try:
        build_certificate_data(customer, kind=kind, holder=HolderInfo.from_holder(linked[chosen[0]]), on=now.date())
    except CertificateDataError as exc:
        raise GenerationError(f"Certificates cannot be generated: {exc}") from exc
    run = GenerationRun(customer_id=customer.id, status=GenerationStatus.QUEUED, mode=mode, kind=kind,
                        holder_ids=chosen, record_sent=bool(record_sent), email_holders=bool(email_holders),
                        total=len(chosen), created_by_id=actor.id if actor else None, created_at=now, updated_at=now)
    db.session.add(run)
    db.session.flush()
    record("generation_run", run.id, "generation_queued", actor=actor, customer_id=customer.id, now=now,
           message=f"{run.total} certificates, {mode.label.lower()}"
           + (", saved to sent certificates" if record_sent else "") + (", e-mailed to holders" if email_holders
                                                                       else ""))
    defer(db.session, GENERATE_JOB, run.id, queue="pdf")
    return run


@dataclass(frozen=True)
class _HolderRow:
    id: int
    name: str
    email: str


PNC_WORDING = "Coverage is primary and non-contributory where required by written contract."


def endorsed(data: dict, *, additional_insured: bool, waiver_of_subrogation: bool,
             primary_noncontributory: bool) -> dict:
    """The certificate data with one link's flags applied: ADDL INSD on the liability rows, SUBR WVD on
    every row in force, and the primary & non-contributory sentence in the description. A proof of
    insurance carries no endorsements."""
    if data.get("kind") == RequestType.POI.value or not (additional_insured or waiver_of_subrogation
                                                         or primary_noncontributory):
        return data
    coverages = []
    for row in data.get("coverages") or []:
        row = dict(row)
        if row.get("present"):
            if additional_insured and row.get("line") != "workers_comp":
                row["addl_insd"] = True
            if waiver_of_subrogation:
                row["subr_wvd"] = True
        coverages.append(row)
    description = data.get("description") or ""
    if primary_noncontributory and PNC_WORDING not in description:
        description = f"{description}\n{PNC_WORDING}".strip()
    return {**data, "coverages": coverages, "description": description}


def _flags_by_holder(run: GenerationRun) -> dict[int, tuple[bool, bool, bool]]:
    links = db.session.execute(sa.select(
        CustomerHolder.holder_id, CustomerHolder.additional_insured, CustomerHolder.waiver_of_subrogation,
        CustomerHolder.primary_noncontributory,
    ).where(CustomerHolder.customer_id == run.customer_id)).all()
    return {holder_id: (ai, wos, pnc) for holder_id, ai, wos, pnc in links}


def run_generation(run: GenerationRun, *, now: datetime, progress: Progress | None = None) -> GenerationRun:
    """Render the run's certificates. Idempotent: a finished run is left alone, a re-run of a run a dead
    worker left ``running`` starts again and skips what it recorded or e-mailed already.

    Holders whose links carry the same flags share one ``render_batch`` call; with several groups, the
    ZIP keeps the chosen order and a combined PDF has the groups one after the other."""
    from app.insurance.pdf import CertificateDataError, HolderInfo, build_certificate_data, render_batch

    if run.status not in (GenerationStatus.QUEUED, GenerationStatus.RUNNING):
        return run
    if run.status is GenerationStatus.QUEUED:
        transition(run, GenerationStatus.RUNNING, actor=None, now=now)
    run.attempts += 1
    run.done = 0
    customer = run.customer
    by_id = {h.id: h for h in db.session.scalars(sa.select(Holder).where(Holder.id.in_(run.holder_ids or [0])))}
    holders = [by_id[i] for i in run.holder_ids if i in by_id]
    if not holders:
        transition(run, GenerationStatus.FAILED, actor=None, now=now, message="None of the holders exists any more.")
        return run
    infos = [HolderInfo.from_holder(h) for h in holders]
    rows = [_HolderRow(h.id, h.name, h.email) for h in holders]
    run.total = len(infos)
    try:
        data = build_certificate_data(customer, kind=run.kind, holder=infos[0], on=now.date())
    except CertificateDataError as exc:
        transition(run, GenerationStatus.FAILED, actor=None, now=now,
                   message=f"Certificates cannot be generated: {exc}")
        return run
    flags = _flags_by_holder(run)
    groups: dict[tuple[bool, bool, bool], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(flags.get(row.id, (False, False, False)), []).append(index)
    plan = [(endorsed(data, additional_insured=ai, waiver_of_subrogation=wos, primary_noncontributory=pnc), indexes)
            for (ai, wos, pnc), indexes in groups.items()]

    per_holder = run.record_sent or run.email_holders
    need_zip = run.mode is GenerationMode.ZIP or per_holder
    passes = 2 if per_holder and run.mode is GenerationMode.MERGED else 1
    base = f"certificates-{_slug(customer.name)}-{now:%Y%m%d}-{run.id}"
    workdir = Path(tempfile.mkdtemp(prefix="certdesk-gen-"))
    finished = 0

    def report(done: int, total: int) -> None:
        if progress:
            progress((finished + done) // passes, len(infos))

    try:
        parts: dict[int, tuple[Path, str]] = {}  # holder index -> (zip file, member)
        if need_zip:
            for number, (group_data, indexes) in enumerate(plan):
                path = workdir / f"part-{number}.zip"
                render_batch(group_data, [infos[i] for i in indexes], path, mode="zip", progress=report)
                finished += len(indexes)
                for i, member in zip(indexes, _zip_members(path, len(indexes)), strict=True):
                    parts[i] = (path, member.filename)
        if run.mode is GenerationMode.MERGED:
            pdfs = []
            for number, (group_data, indexes) in enumerate(plan):
                path = workdir / f"part-{number}.pdf"
                render_batch(group_data, [infos[i] for i in indexes], path, mode="merged", progress=report)
                finished += len(indexes)
                pdfs.append(path)
            out_path = pdfs[0] if len(pdfs) == 1 else _concat_pdfs(pdfs, workdir / f"{base}.pdf")
        elif len(plan) == 1:
            out_path = workdir / "part-0.zip"
        else:
            out_path = _assemble_zip(parts, infos, workdir / f"{base}.zip")
        if per_holder:
            _deliver_each(run, customer, rows, parts, now)
        run.file_key = get_store().save_file(out_path)
        run.filename = f"{base}{out_path.suffix}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    run.done = run.total
    run.expires_at = now + timedelta(days=current_app.config["GENERATED_FILE_DAYS"])
    transition(run, GenerationStatus.DONE, actor=None, now=now)
    return run


def _zip_members(zip_path: Path, count: int) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(zip_path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".pdf")]
    if len(members) != count:
        raise GenerationError(f"The renderer produced {len(members)} files for {count} holders.")
    return members


def _assemble_zip(parts: dict[int, tuple[Path, str]], infos: list, out_path: Path) -> Path:
    """One ZIP in the chosen holder order from the per-group ZIPs (members copied one at a time)."""
    from app.insurance.pdf import filename_for, write_zip_entry

    used: set[str] = set()
    archives: dict[Path, zipfile.ZipFile] = {}
    try:
        with zipfile.ZipFile(out_path, "w", allowZip64=True) as out:
            for index in range(len(infos)):
                path, member = parts[index]
                source = archives.get(path) or archives.setdefault(path, zipfile.ZipFile(path))
                write_zip_entry(out, filename_for(infos[index], index + 1, used), source.read(member))
    finally:
        for archive in archives.values():
            archive.close()
    return out_path


def _concat_pdfs(paths: list[Path], out_path: Path) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for path in paths:
        writer.append(str(path))
    with out_path.open("wb") as fh:
        writer.write(fh)
    return out_path


def _deliver_each(run: GenerationRun, customer: Customer, rows: list[_HolderRow],
                  parts: dict[int, tuple[Path, str]], now: datetime) -> None:
    """Store each holder's PDF; record it in sent certificates and/or e-mail it (each at most once per run)."""
    from app.notify import queue_email

    store = get_store()
    recorded = set(db.session.scalars(
        sa.select(SentCertificate.holder_id).where(SentCertificate.generation_run_id == run.id)
    ))
    emailed = 0
    archives: dict[Path, zipfile.ZipFile] = {}
    try:
        for index, row in enumerate(rows):
            path, member = parts[index]
            archive = archives.get(path) or archives.setdefault(path, zipfile.ZipFile(path))
            key = store.save(archive.read(member))
            filename = f"certificate-{_slug(row.name)}.pdf"
            if run.email_holders and row.email:
                queue_email(row.email, "holder_certificate", subject=f"Certificate of insurance for {customer.name}",
                            context={"customer": customer, "holder_name": row.name, "kind": run.kind},
                            customer_id=customer.id, dedupe_key=f"generation:{run.id}:holder:{row.id}",
                            attachments=[{"key": key, "filename": filename, "content_type": "application/pdf"}])
                emailed += 1
            if run.record_sent and row.id not in recorded:
                db.session.add(SentCertificate(
                    customer_id=customer.id, holder_id=row.id, generation_run_id=run.id, holder_name=row.name,
                    holder_email=row.email, kind=run.kind, document_key=key, filename=filename,
                    emailed=bool(run.email_holders and row.email), sent_by_id=run.created_by_id, created_at=now,
                ))
    finally:
        for archive in archives.values():
            archive.close()
    run.emailed_count = emailed
    db.session.flush()


# -- reading ----------------------------------------------------------------------------------------

def recent_runs(customer_id: int, limit: int = 5) -> list[GenerationRun]:
    return list(db.session.scalars(
        sa.select(GenerationRun).where(GenerationRun.customer_id == customer_id)
        .order_by(GenerationRun.created_at.desc(), GenerationRun.id.desc()).limit(limit)
    ))


def sent_certificates_query(customer_id: int | None = None):
    stmt = sa.select(SentCertificate).order_by(SentCertificate.created_at.desc(), SentCertificate.id.desc())
    if customer_id is not None:
        stmt = stmt.where(SentCertificate.customer_id == customer_id)
    return stmt


# -- sweeps -----------------------------------------------------------------------------------------

def _key_in_use(key: str, *, except_run: int) -> bool:
    in_runs = db.session.scalar(sa.select(sa.func.count(GenerationRun.id)).where(
        GenerationRun.file_key == key, GenerationRun.id != except_run))
    in_sent = db.session.scalar(sa.select(sa.func.count(SentCertificate.id)).where(SentCertificate.document_key == key))
    return bool(in_runs or in_sent)


@register_sweep("generated-files")
def remove_expired_files(now: datetime) -> int:
    """Remove generated files past GENERATED_FILE_DAYS (and uploaded import files as old)."""
    count = 0
    store = get_store()
    runs = db.session.scalars(sa.select(GenerationRun).where(
        GenerationRun.status == GenerationStatus.DONE, GenerationRun.expires_at <= now))
    for run in runs:
        key, run.file_key = run.file_key, None
        if key and not _key_in_use(key, except_run=run.id):
            store.delete(key)
        transition(run, GenerationStatus.EXPIRED, actor=None, now=now, message="file removed after its retention time")
        count += 1
    cutoff = now - timedelta(days=current_app.config["GENERATED_FILE_DAYS"])
    finished = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)
    for run in db.session.scalars(sa.select(ImportRun).where(
            ImportRun.status.in_(finished), ImportRun.file_key.is_not(None), ImportRun.updated_at <= cutoff)):
        key, run.file_key = run.file_key, None
        db.session.flush()
        if not db.session.scalar(sa.select(sa.func.count(ImportRun.id)).where(ImportRun.file_key == key)):
            store.delete(key)
        count += 1
    return count


@register_sweep("stuck-holder-jobs")
def requeue_stuck_runs(now: datetime) -> int:
    """Enqueue again the generation / import runs a dead worker or a lost Redis message left behind."""
    count = 0
    stale = sa.or_(
        sa.and_(GenerationRun.status == GenerationStatus.QUEUED, GenerationRun.updated_at <= now - QUEUED_GRACE),
        sa.and_(GenerationRun.status == GenerationStatus.RUNNING, GenerationRun.updated_at <= now - RUNNING_GRACE),
    )
    for run in db.session.scalars(sa.select(GenerationRun).where(stale)):
        if run.attempts >= MAX_ATTEMPTS:
            transition(run, GenerationStatus.FAILED, actor=None, now=now,
                       message=f"Gave up after {run.attempts} attempts; start the generation again.")
        else:
            run.updated_at = now
            defer(db.session, GENERATE_JOB, run.id, queue="pdf")
        count += 1
    import_stale = sa.and_(ImportRun.status.in_((ImportStatus.VALIDATING, ImportStatus.IMPORTING)),
                           ImportRun.updated_at <= now - RUNNING_GRACE)
    for run in db.session.scalars(sa.select(ImportRun).where(import_stale)):
        run.updated_at = now
        job = ("app.customers.holder_jobs.check_holder_import" if run.status is ImportStatus.VALIDATING
               else "app.customers.holder_jobs.apply_holder_import")
        defer(db.session, job, run.id, queue="default")
        count += 1
    return count
