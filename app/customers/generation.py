"""Mass certificate generation: one customer, many holders, a ZIP of PDFs or one combined PDF.

``start_generation`` (the web request) only checks and records the choice: a GenerationRun (status
``queued``) that says "every linked holder" or lists the chosen holders as GenerationRunHolder rows,
written in chunks. Its job is enqueued after the commit. Nothing in the request grows with the number
of holders beyond those rows: counting and checking happen in the database.

The job calls ``begin_attempt`` (the attempt is counted and committed before any work, so a rollback
cannot reset it) and then ``run_generation``, which:
- for "all holders", writes the customer's linked holders into GenerationRunHolder in one
  ``INSERT ... SELECT`` (in the database, in name order);
- reads the holders back in chunks of GENERATION_CHUNK_SIZE by position (keyset: every query has a
  handful of bind parameters, whatever the number of holders; PostgreSQL refuses more than 65,535);
- renders the certificate once per combination of the links' endorsement flags (and once more for each
  holder a holder-specific endorsement names, so it prints exactly the marks its single certificate would)
  and stamps each holder into it, writing straight to one file on disk (``generation_files``): memory
  stays flat;
- runs the issue guard per holder on what its certificate prints: a holder it blocks (an incomplete
  address, a mark no endorsement backs for it) is skipped and listed on the run with the guard's reasons;
  a block that concerns every holder (a policy not in force, banned wording) fails the run;
- per holder, when asked, stores its own PDF in *sent certificates* and e-mails it (at most once per
  run, so a re-run skips what was done).

A failure that a retry cannot fix (the customer was suspended, a policy lapsed, no chosen holder is
linked any more) ends the run as ``failed`` at once, with a message saying what to do. Any other error
is retried (RQ's retries and the sweep) until MAX_ATTEMPTS attempts were used; then the run fails with
a message too. Two sweep steps keep it honest: files past their time are removed, and runs a dead
worker left ``queued`` / ``running`` are enqueued again (the job is idempotent).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import lifecycle
from app.activity import record
from app.enums import (
    GenerationMode,
    GenerationStatus,
    ImportStatus,
    RequestType,
)
from app.extensions import db
from app.insurance import guard as guard_mod
from app.insurance import issuing, signing
from app.models import (
    Customer,
    CustomerHolder,
    GenerationRun,
    GenerationRunHolder,
    Holder,
    ImportRun,
    SentCertificate,
    User,
)
from app.models.holders import WORKING_IMPORT_STATUSES
from app.queue import defer
from app.storage import get_store

GENERATE_JOB = "app.customers.holder_jobs.generate_certificates"
QUEUED_GRACE = timedelta(minutes=5)    # a queued run nobody picked up after this is enqueued again
RUNNING_GRACE = timedelta(minutes=15)  # a running run without progress for this long lost its worker
MAX_ATTEMPTS = 3
DEFAULT_CHUNK_SIZE = 1000              # holders per query (GENERATION_CHUNK_SIZE overrides it)
MAX_ID = 2**31 - 1

Progress = Callable[[int, int], None]


class GenerationError(ValueError):
    """The generation cannot start or run, and trying again as it is will not help; the message is
    safe to show and says what to do."""


def chunk_size() -> int:
    return max(1, int(current_app.config.get("GENERATION_CHUNK_SIZE") or DEFAULT_CHUNK_SIZE))


def transition(run: GenerationRun, to: GenerationStatus, *, actor: User | None, now: datetime,
               message: str = "") -> None:
    """Through the lifecycle engine; an ending run keeps its error and drops its chosen-holder rows."""
    lifecycle.transition(run, to, actor=actor, now=now,
                         note=message or f"{run.total} certificates, {run.mode.label.lower()}")
    if to in (GenerationStatus.DONE, GenerationStatus.FAILED):
        run.error = message[:500] if to is GenerationStatus.FAILED else ""
        # the chosen holders served their purpose; the run keeps its count
        db.session.execute(sa.delete(GenerationRunHolder).where(GenerationRunHolder.run_id == run.id))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "holder"


# -- starting (the web request) -------------------------------------------------------------------------

def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _linked_holder_ids(customer_id: int, ids: list[int]) -> set[int]:
    return set(db.session.scalars(sa.select(CustomerHolder.holder_id).where(
        CustomerHolder.customer_id == customer_id, CustomerHolder.holder_id.in_(ids))))


def start_generation(customer: Customer, *, holder_ids: list[int] | None, mode: GenerationMode | str,
                     kind: RequestType | str = RequestType.COI, record_sent: bool = False,
                     email_holders: bool = False, actor: User | None, now: datetime) -> GenerationRun:
    """Check the choice and queue a run. ``holder_ids=None`` means every linked holder (stored as that
    choice, not as a list); chosen ids are checked and stored in chunks, in the order given, once each."""
    from app.insurance.certificate_data import CertificateDataError, build_certificate_data
    from app.insurance.layout import HolderInfo

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
    size = chunk_size()
    linked = sa.select(Holder).join(CustomerHolder, CustomerHolder.holder_id == Holder.id).where(
        CustomerHolder.customer_id == customer.id)
    if holder_ids is None:
        chosen: list[int] = []
        total = db.session.scalar(sa.select(sa.func.count()).select_from(CustomerHolder).where(
            CustomerHolder.customer_id == customer.id)) or 0
        first = db.session.scalar(linked.order_by(CustomerHolder.id).limit(1))  # any one: no sort of them all
        if first is None:
            raise GenerationError("This customer has no additional interests yet: add or import holders first.")
    else:
        chosen = list(dict.fromkeys(holder_ids))
        if not chosen:
            raise GenerationError("Choose at least one holder.")
        unknown = GenerationError("Some of the chosen holders are not additional interests of this customer.")
        if any(not 0 < h <= MAX_ID for h in chosen):
            raise unknown
        for part in _chunks(chosen, size):
            if len(_linked_holder_ids(customer.id, part)) != len(part):
                raise unknown
        total = len(chosen)
        first = db.session.get(Holder, chosen[0])
    try:
        build_certificate_data(customer, kind=kind, holder=HolderInfo.from_holder(first), on=now.date())
    except CertificateDataError as exc:
        raise GenerationError(f"Certificates cannot be generated: {exc}") from exc
    run = GenerationRun(customer_id=customer.id, status=GenerationStatus.QUEUED, mode=mode, kind=kind,
                        all_holders=holder_ids is None, record_sent=bool(record_sent),
                        email_holders=bool(email_holders), total=total, created_by_id=actor.id if actor else None,
                        created_at=now, updated_at=now)
    db.session.add(run)
    db.session.flush()
    for offset in range(0, len(chosen), size):
        db.session.execute(sa.insert(GenerationRunHolder), [
            {"run_id": run.id, "position": offset + i + 1, "holder_id": holder_id}
            for i, holder_id in enumerate(chosen[offset:offset + size])])
    record("generation_run", run.id, "generation_queued", actor=actor, customer_id=customer.id, now=now,
           message=f"{run.total} certificates, {mode.label.lower()}"
           + (", saved to sent certificates" if record_sent else "") + (", e-mailed to holders" if email_holders
                                                                       else ""))
    defer(db.session, GENERATE_JOB, run.id, queue="pdf")
    return run


# -- attempts and failures (the job) ---------------------------------------------------------------------

def begin_attempt(run: GenerationRun, *, now: datetime) -> bool:
    """Count one more attempt before any work; the caller commits it at once, so an attempt that later
    fails and rolls back still counts. False (and the run failed, with the reason) when MAX_ATTEMPTS
    were used already: a run that keeps crashing its worker stops being retried."""
    if run.attempts >= MAX_ATTEMPTS:
        transition(run, GenerationStatus.FAILED, actor=None, now=now, message=_gave_up(run.attempts, run.error))
        return False
    run.attempts += 1
    if run.status is GenerationStatus.QUEUED:
        transition(run, GenerationStatus.RUNNING, actor=None, now=now)
    run.updated_at = now
    return True


def _gave_up(attempts: int, last_error: str = "") -> str:
    why = f" The last error: {last_error}" if last_error else (
        " The worker stopped each time before finishing (it may have run out of memory or time, or been "
        "restarted).")
    return (f"Generation stopped after {attempts} attempts.{why} Start the generation again; if it fails "
            "again, ask an administrator to check the workers.")


def _describe(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    text = " ".join(str(inner).split()) or type(inner).__name__
    return f"{type(inner).__name__}: {text}"[:200]


def record_failure(run: GenerationRun, exc: BaseException, *, now: datetime) -> bool:
    """Decide what an error means for the run (its attempt was counted already). True when the run is
    now ``failed`` (a GenerationError, or the last attempt); False when another attempt will follow (the
    error is noted on the run, so the page says an attempt failed and will be retried)."""
    from app.insurance.certificate_data import CertificateDataError

    if isinstance(exc, CertificateDataError):
        exc = GenerationError(f"Certificates cannot be generated: {exc}. Correct it, then start the generation "
                              "again.")
    if isinstance(exc, GenerationError):
        transition(run, GenerationStatus.FAILED, actor=None, now=now, message=str(exc))
        return True
    if run.attempts >= MAX_ATTEMPTS:
        transition(run, GenerationStatus.FAILED, actor=None, now=now, message=_gave_up(run.attempts, _describe(exc)))
        return True
    run.error = f"Attempt {run.attempts} of {MAX_ATTEMPTS} failed ({_describe(exc)}); it will be tried again."[:500]
    run.updated_at = now
    return False


# -- the holders of a run, in chunks ---------------------------------------------------------------------

@dataclass(frozen=True)
class _HolderRow:
    position: int
    id: int
    name: str
    email: str
    info: object           # app.insurance.layout.HolderInfo
    flags: tuple[bool, bool, bool]  # additional insured, waiver of subrogation, primary & non-contributory
    recorded: bool         # already in sent certificates for this run (a re-run)


def _select_all_linked(run: GenerationRun) -> None:
    """Write every holder linked to the customer as the run's holders, in name order, in the database."""
    ranked = (
        sa.select(sa.literal(run.id, sa.Integer),
                  sa.func.row_number().over(order_by=(sa.func.lower(Holder.name), Holder.id)), Holder.id)
        .join(CustomerHolder, CustomerHolder.holder_id == Holder.id)
        .where(CustomerHolder.customer_id == run.customer_id)
    )
    db.session.execute(sa.delete(GenerationRunHolder).where(GenerationRunHolder.run_id == run.id))
    db.session.execute(sa.insert(GenerationRunHolder).from_select(["run_id", "position", "holder_id"], ranked))


def _linked_rows(run: GenerationRun):
    """The run's holders that are (still) linked to the customer."""
    return (
        sa.select(GenerationRunHolder.position)
        .join(CustomerHolder, sa.and_(CustomerHolder.holder_id == GenerationRunHolder.holder_id,
                                      CustomerHolder.customer_id == run.customer_id))
        .where(GenerationRunHolder.run_id == run.id)
    )


def _holder_rows(run: GenerationRun, size: int, *, limit: int | None = None,
                 longer_than: int | None = None) -> Iterator[_HolderRow]:
    """The run's holders in order, one query per ``size`` rows (keyset on position: a few bind parameters
    each, and no cursor held open across the job's progress commits)."""
    from app.insurance.layout import HolderInfo

    recorded = sa.literal(False)
    stmt = _linked_rows(run).join(Holder, Holder.id == GenerationRunHolder.holder_id).add_columns(
        Holder.id, Holder.name, Holder.email, Holder.address, Holder.city, Holder.state, Holder.zip_code,
        CustomerHolder.additional_insured, CustomerHolder.waiver_of_subrogation,
        CustomerHolder.primary_noncontributory)
    if run.record_sent:
        stmt = stmt.outerjoin(SentCertificate, sa.and_(SentCertificate.generation_run_id == run.id,
                                                       SentCertificate.holder_id == Holder.id))
        recorded = SentCertificate.id.is_not(None)
    stmt = stmt.add_columns(recorded)
    if longer_than is not None:
        stmt = stmt.where(sa.func.length(Holder.name) > longer_than)
    last, taken = 0, 0
    while True:
        rows = db.session.execute(stmt.where(GenerationRunHolder.position > last)
                                  .order_by(GenerationRunHolder.position).limit(size)).all()
        for (position, holder_id, name, email, address, city, state, zip_code, ai, wos, pnc, done) in rows:
            yield _HolderRow(position, holder_id, name or "", email or "",
                             HolderInfo(name=name or "", address=address or "", city=city or "", state=state or "",
                                        zip_code=zip_code or "", email=email or ""),
                             (bool(ai), bool(wos), bool(pnc)), bool(done))
            taken += 1
            if limit is not None and taken >= limit:
                return
        if len(rows) < size:
            return
        last = rows[-1][0]


# -- rendering -------------------------------------------------------------------------------------------

PNC_WORDING = "Coverage is primary and non-contributory where required by written contract."


def endorsed(data: dict, *, additional_insured: bool, waiver_of_subrogation: bool,
             primary_noncontributory: bool, policies: dict | None = None, holder_name: str = "") -> dict:
    """The certificate data with one link's flags applied, as a single certificate would print them:
    ADDL INSD on the liability rows, SUBR WVD on the workers' compensation row (as a WOS request marks
    it), and the primary & non-contributory sentence in the description. With ``policies`` (by id), a
    mark is printed only where the row's policy carries an endorsement for it that covers this holder: a
    blanket one, or one naming ``holder_name`` (the issue guard's rule; ``data["omitted_marks"]`` says
    which were left off and why). A proof of insurance carries no endorsements."""
    from app.insurance.guard import _endorsement

    if data.get("kind") == RequestType.POI.value or not (additional_insured or waiver_of_subrogation
                                                         or primary_noncontributory):
        return data

    def backed(row, kind: str) -> bool:
        if policies is None:
            return True
        policy = policies.get(row.get("policy_id"))
        if policy is not None and _endorsement(policy, kind, holder_name) is not None:
            return True
        omitted.append(f"{row.get('title', row.get('line'))}: no blanket {kind.replace('_', ' ')} endorsement "
                       f"nor one naming {holder_name or 'the holder'}")
        return False

    omitted: list[str] = []
    coverages = []
    gl = None
    for row in data.get("coverages") or []:
        row = dict(row)
        if row.get("present"):
            if row.get("line") == "general_liability":
                gl = row
            if additional_insured and row.get("line") != "workers_comp" and backed(row, "additional_insured"):
                row["addl_insd"] = True
            if waiver_of_subrogation and row.get("line") == "workers_comp" and backed(row, "waiver_of_subrogation"):
                row["subr_wvd"] = True
        coverages.append(row)
    description = data.get("description") or ""
    if (primary_noncontributory and PNC_WORDING not in description and gl is not None
            and backed(gl, "primary_noncontributory")):
        description = f"{description}\n{PNC_WORDING}".strip()
    out = {**data, "coverages": coverages, "description": description}
    if omitted:
        out["omitted_marks"] = omitted
    return out


@dataclass
class _Group:
    """The certificate of one combination of endorsement flags: rendered once, each holder stamped in."""

    data: dict
    stamper: object | None  # stamping.Stamper; None: the wording names the holder inside a sentence
    page: object | None = None  # generation_files.BasePage in the merged file

    def pdf_for(self, holder, stamp=None, seal=None) -> bytes:
        """One holder's own certificate (a ZIP member, a sent certificate, an e-mail attachment), with its
        number, revision, verification code and QR code (``stamp``), signed with ``seal`` in the same pass."""
        from app.insurance import batching

        if self.stamper is not None:
            return self.stamper.stamp(holder, stamp, seal)
        return batching._render_full((self.data, holder, stamp), seal)


def _widest_name(run: GenerationRun, size: int):
    """The holder whose name takes the most description lines (for wording that names the holder, the
    base keeps that many lines). Only names too long to be sure they fit one line are measured."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from app.insurance import layout

    widest = max(stringWidth(chr(c), layout.DESCRIPTION_FONT, layout.DESCRIPTION_SIZE) for c in range(32, 256))
    safe = int(layout.DESCRIPTION_W // widest)
    best, lines = None, 1
    for row in _holder_rows(run, size, longer_than=safe):
        count = len(layout.description_lines(row.name))
        if count > lines:
            best, lines = row.info, count
    return best


MARK_KINDS = ("additional_insured", "waiver_of_subrogation", "primary_noncontributory")


def _name_key(name: str | None) -> str:
    """A holder name as endorsements are matched to it (case and spacing ignored, as ``Policy.endorsement_for``)."""
    return " ".join((name or "").lower().split())


def _specific_names(policies: dict) -> set[str]:
    """The holders named by a holder-specific endorsement (of a kind behind a mark) on the customer's policies."""
    return {_name_key(e.holder_name) for p in policies.values() for e in p.endorsements
            if not e.is_blanket and e.kind.value in MARK_KINDS and _name_key(e.holder_name)}


def group_key(row: _HolderRow, specific: set[str]) -> tuple:
    """Which group prints a holder: its link's flags, and its name when an endorsement names it (only those
    holders can print a mark the others cannot)."""
    name = _name_key(row.name)
    return (row.flags, name if name in specific else "")


def _groups(run: GenerationRun, data: dict, first, size: int, *, merged: bool,
            policies: dict) -> tuple[dict[tuple, _Group], bytes | None]:
    """One group per combination of flags among the run's links, and one per holder named by a
    holder-specific endorsement (groups that print the same share one render), and for a combined PDF the
    base file holding every group's certificate once. Keys: ``group_key``."""
    from app.customers.generation_files import combine_bases
    from app.insurance import batching

    combos = db.session.execute(
        _linked_rows(run).with_only_columns(CustomerHolder.additional_insured, CustomerHolder.waiver_of_subrogation,
                                            CustomerHolder.primary_noncontributory).distinct()).all()
    wanted: dict[tuple, str] = {((bool(ai), bool(wos), bool(pnc)), ""): "" for ai, wos, pnc in combos}
    specific = _specific_names(policies)
    if specific:  # a pass over the names only when some endorsement names a holder
        for row in _holder_rows(run, size):
            key = group_key(row, specific)
            if key[1]:
                wanted.setdefault(key, row.name)
    samples = [first]
    if batching._holder_specific(data):
        widest = _widest_name(run, size)
        if widest is not None:
            samples.append(widest)
    by_data: dict[str, _Group] = {}
    groups: dict[tuple, _Group] = {}
    for (flags, _name), holder_name in wanted.items():
        ai, wos, pnc = flags
        group_data = endorsed(data, additional_insured=ai, waiver_of_subrogation=wos, primary_noncontributory=pnc,
                              policies=policies, holder_name=holder_name)
        key = json.dumps({k: v for k, v in group_data.items() if k != "omitted_marks"}, sort_keys=True, default=str)
        if key not in by_data:
            by_data[key] = _Group(group_data, batching._prepare_batch(group_data, samples, numbered=True))
        groups[(flags, _name)] = by_data[key]
    if merged:
        unique = list(by_data.values())
        if any(g.stamper is None for g in unique):
            raise GenerationError("The description of operations names the holder inside a sentence, so each "
                                  "certificate needs a render of its own: choose Individual PDFs (ZIP).")
        combined, pages = combine_bases([(g.stamper.base, g.stamper.name_slots, g.stamper.number_slots)
                                         for g in unique])
        for group, page in zip(unique, pages, strict=True):
            group.page = page
        return groups, combined
    return groups, None


def run_generation(run: GenerationRun, *, now: datetime, progress: Progress | None = None,
                   size: int | None = None) -> GenerationRun:
    """Render the run's certificates into one file, holder by holder. Idempotent: a finished run is left
    alone; a re-run of a run a dead worker left ``running`` starts again and skips what it recorded or
    e-mailed already. Raises GenerationError for what a retry cannot fix.

    The ZIP and the combined PDF both keep the chosen order (all holders: by name); each holder's
    certificate carries the endorsement flags of its own link."""
    from app.customers.generation_files import MergedPdfWriter, ZipStreamWriter
    from app.insurance.certificate_data import build_certificate_data

    if not run.is_working:
        return run
    if run.status is GenerationStatus.QUEUED:
        transition(run, GenerationStatus.RUNNING, actor=None, now=now)
    started = time.monotonic()
    customer = run.customer
    if not customer.is_active:
        raise GenerationError(f"{customer.name} is {customer.status} now: certificates are issued for active "
                              "customers only. Reactivate the customer, then start the generation again.")
    size = size or chunk_size()
    if run.all_holders:
        _select_all_linked(run)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(_linked_rows(run).subquery())) or 0
    if not total:
        raise GenerationError("None of the chosen holders is an additional interest of this customer any more: "
                              "choose holders again.")
    first = next(_holder_rows(run, 1, limit=1))
    data = build_certificate_data(customer, kind=run.kind, holder=first.info, on=now.date())
    refusal = issuing.run_guard(customer, data, first.info, now.date())
    everyone = [b.message for b in refusal.blocks if b.code not in PER_HOLDER_BLOCKS]
    if everyone:
        raise GenerationError("Certificates cannot be generated: " + " ".join(everyone))
    merged = run.mode is GenerationMode.MERGED
    policies = {p.id: p for p in customer.policies}
    specific = _specific_names(policies)
    groups, combined = _groups(run, data, first.info, size, merged=merged, policies=policies)
    _record_omitted_marks(run, groups, now)
    wording = issuing.active_wording()
    run.total, run.done = total, 0
    run.skipped, run.skipped_count = [], 0
    run_id, kind, per_holder = run.id, run.kind, run.record_sent or run.email_holders
    record_sent, email_holders, created_by_id = run.record_sent, run.email_holders, run.created_by_id
    base = f"certificates-{_slug(customer.name)}-{now:%Y%m%d}-{run_id}"
    width = max(4, len(str(total)))
    workdir = Path(tempfile.mkdtemp(prefix="certdesk-gen-"))
    done = emailed = seen = 0
    passed: set[tuple] = set()
    # Every holder's own file (a ZIP member, a sent certificate, an attachment) is signed as it is stamped.
    seal = signing.get_seal(signed_at=now)
    try:
        out_path = workdir / f"{base}.{'pdf' if merged else 'zip'}"
        with out_path.open("w+b") as fh:  # read back too: the combined PDF is signed in place at the end
            out = MergedPdfWriter(fh, combined, workdir, seal) if merged else ZipStreamWriter(fh, workdir)
            if progress:
                progress(0, total)
            for rows in _batched(_holder_rows(run, size), size):
                # The issue guard per holder, on what its certificate prints: a holder it blocks is skipped.
                chunk = []
                for row in rows:
                    group = groups[group_key(row, specific)]
                    # Within a group only the holder's completeness can change the answer (a holder an
                    # endorsement names has a group of its own): a passing answer is reused.
                    seen_as = (id(group), *(bool(v.strip()) for v in (row.info.name, row.info.address, row.info.city,
                                                                       row.info.state, row.info.zip_code)))
                    if seen_as not in passed:
                        result = guard_mod.check(group.data, policies, row.info, now.date(), wording)
                        if not result.ok:
                            _skip(run, row, result.reasons)
                            continue
                        passed.add(seen_as)
                    chunk.append(row)
                seen += len(rows) - len(chunk)
                # Each holder's own issued certificate (number, revision, verification code), a chunk at a time.
                entries = issuing.allocate_batch(
                    customer, kind=kind, datas=[groups[group_key(r, specific)].data for r in chunk],
                    holders=[r.info for r in chunk], holder_ids=[r.id for r in chunk], actor=None, now=now,
                    generation_run_id=run_id) if chunk else []
                for row, entry in zip(chunk, entries, strict=True):
                    group = groups[group_key(row, specific)]
                    own_pdf = group.pdf_for(row.info, entry.stamp, seal) if per_holder or not merged else None
                    if own_pdf is not None:
                        entry.cert.sha256 = hashlib.sha256(own_pdf).hexdigest()
                    if merged:
                        out.add(group.page, row.info, entry.stamp)
                    else:
                        out.add(f"{done + 1:0{width}d}-{_member_slug(row.name)}.pdf", own_pdf)
                    if per_holder:  # this holder's own copy: sent certificates and/or its e-mail
                        emailed += _deliver_one(run_id, customer, row, own_pdf, kind=kind, record_sent=record_sent,
                                                email_holders=email_holders, sent_by_id=created_by_id, now=now,
                                                cert=entry.cert)
                    done += 1
                    seen += 1
                if progress and len(rows) == size:
                    progress(seen, total)
            if not done:
                raise GenerationError("No certificate was generated: the issue guard blocked every holder ("
                                      + " ".join(run.skipped[0]["reasons"] if run.skipped else []) + ").")
            out.close()
        digest = _file_sha256(out_path) if merged else None
        run.file_key = get_store().save_file(out_path)
        run.filename = out_path.name
        issuing.set_run_files(run_id, document_key=run.file_key, sha256=digest)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finished = now + timedelta(seconds=time.monotonic() - started)
    run.total = run.done = done
    run.emailed_count = emailed
    run.expires_at = finished + timedelta(days=current_app.config["GENERATED_FILE_DAYS"])
    transition(run, GenerationStatus.DONE, actor=None, now=finished)
    if progress:
        progress(done, done)
    return run


PER_HOLDER_BLOCKS = {"holder_incomplete", "missing_endorsement"}  # the guard's blocks that skip one holder
SKIPPED_KEPT = 100  # skipped holders listed on the run (all are counted)


def _skip(run: GenerationRun, row: _HolderRow, reasons: list[str]) -> None:
    """A holder the issue guard blocks gets no certificate; the run lists it with the guard's reasons."""
    run.skipped_count = (run.skipped_count or 0) + 1
    if len(run.skipped or []) < SKIPPED_KEPT:
        run.skipped = [*(run.skipped or []), {"holder_id": row.id, "name": row.name, "reasons": reasons}]


def _batched(rows: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_omitted_marks(run: GenerationRun, groups: dict, now: datetime) -> None:
    """Say, on the run's timeline, which marks a link asked for but no blanket endorsement backs (those
    certificates print without them, as the issue guard requires)."""
    omitted = sorted({m for g in groups.values() for m in (g.data.get("omitted_marks") or [])})
    if omitted:
        record("generation_run", run.id, "marks_omitted", actor=None, customer_id=run.customer_id, now=now,
               message="Marks left off (the issue guard prints ADDL INSD / SUBR WVD / P&NC only where an "
               "endorsement backs them): " + "; ".join(omitted) + ".")


def _member_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:60] or "holder"


def _deliver_one(run_id: int, customer: Customer, row: _HolderRow, own_pdf: bytes, *, kind: RequestType,
                 record_sent: bool, email_holders: bool, sent_by_id: int | None, now: datetime,
                 cert=None) -> int:
    """Store one holder's PDF; record it in sent certificates and/or e-mail it (each at most once per run:
    the e-mail by its dedupe key, the record by ``row.recorded``). Returns 1 when the holder is e-mailed."""
    from app.notify import queue_email

    key = get_store().save(own_pdf)
    filename = cert.filename if cert is not None else f"certificate-{_slug(row.name)}.pdf"
    if cert is not None:
        cert.document_key = key
    emailed = bool(email_holders and row.email)
    if emailed:
        queue_email(row.email, "holder_certificate",
                    subject=_l("Certificate of insurance for %(customer)s", customer=customer.name),
                    context={"customer": customer, "holder_name": row.name, "kind": kind},
                    customer_id=customer.id, dedupe_key=f"generation:{run_id}:holder:{row.id}",
                    attachments=[{"key": key, "filename": filename, "content_type": "application/pdf"}])
    if record_sent and not row.recorded:
        db.session.add(SentCertificate(
            customer_id=customer.id, holder_id=row.id, generation_run_id=run_id, holder_name=row.name,
            holder_email=row.email, kind=kind, document_key=key, filename=filename, emailed=emailed,
            sent_by_id=sent_by_id, created_at=now, certificate_id=cert.id if cert is not None else None,
        ))
    return int(emailed)


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


SENT_PER_PAGE = 50


def sent_certificates_page(customer_id: int | None = None, *, after: str | None = None, before: str | None = None,
                           page: int = 1, per_page: int | None = None):
    """Newest first, one seek page (app/pagination.py) over ``ix_sent_certificates_created`` (or the
    customer's ``ix_sent_certificates_customer_created``), with the customer, sender and certificate
    number read in the same statement."""
    from sqlalchemy.orm import joinedload, load_only

    from app import pagination
    from app.models import Customer, IssuedCertificate, User

    stmt = sa.select(SentCertificate)
    if customer_id is not None:
        stmt = stmt.where(SentCertificate.customer_id == customer_id)
    listed = stmt.options(
        load_only(SentCertificate.id, SentCertificate.created_at, SentCertificate.customer_id,
                  SentCertificate.holder_name, SentCertificate.holder_email, SentCertificate.kind,
                  SentCertificate.filename, SentCertificate.emailed, SentCertificate.sent_by_id,
                  SentCertificate.certificate_id),
        joinedload(SentCertificate.customer).load_only(Customer.name),
        joinedload(SentCertificate.sent_by).load_only(User.name),
        joinedload(SentCertificate.certificate).load_only(IssuedCertificate.certificate_number,
                                                          IssuedCertificate.revision, IssuedCertificate.is_current),
    )
    return pagination.seek_page(listed, (SentCertificate.created_at, SentCertificate.id),
                                lambda s: (s.created_at, s.id), descending=True, after=after, before=before,
                                page=page, per_page=per_page or SENT_PER_PAGE, count_stmt=stmt)


# -- sweeps -----------------------------------------------------------------------------------------

def _key_in_use(key: str, *, except_run: int) -> bool:
    in_runs = db.session.scalar(sa.select(sa.func.count(GenerationRun.id)).where(
        GenerationRun.file_key == key, GenerationRun.id != except_run))
    in_sent = db.session.scalar(sa.select(sa.func.count(SentCertificate.id)).where(SentCertificate.document_key == key))
    return bool(in_runs or in_sent)


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


def requeue_stuck_runs(now: datetime) -> int:
    """Enqueue again the generation / import runs a dead worker or a lost Redis message left behind. Only
    ``queued`` / ``running`` runs qualify: a failed run is final and is never enqueued again."""
    count = 0
    stale = sa.or_(
        sa.and_(GenerationRun.status == GenerationStatus.QUEUED, GenerationRun.updated_at <= now - QUEUED_GRACE),
        sa.and_(GenerationRun.status == GenerationStatus.RUNNING, GenerationRun.updated_at <= now - RUNNING_GRACE),
    )
    for run in db.session.scalars(sa.select(GenerationRun).where(stale)):
        if run.attempts >= MAX_ATTEMPTS:  # attempts are committed before each try: this bound holds
            transition(run, GenerationStatus.FAILED, actor=None, now=now, message=_gave_up(run.attempts, run.error))
        else:
            run.updated_at = now
            defer(db.session, GENERATE_JOB, run.id, queue="pdf")
        count += 1
    import_stale = sa.and_(ImportRun.status.in_(WORKING_IMPORT_STATUSES),
                           ImportRun.updated_at <= now - RUNNING_GRACE)
    for run in db.session.scalars(sa.select(ImportRun).where(import_stale)):
        run.updated_at = now
        job = ("app.customers.holder_jobs.check_holder_import" if run.status is ImportStatus.VALIDATING
               else "app.customers.holder_jobs.apply_holder_import")
        defer(db.session, job, run.id, queue="default")
        count += 1
    return count
