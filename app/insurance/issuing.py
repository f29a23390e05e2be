"""One issuing path: every certificate that leaves CertDesk becomes an ``IssuedCertificate`` here.

Automatic issue, staff submit, upload of an already-issued PDF, mass generation and re-issue all call
``issue`` (one certificate) or ``allocate_batch`` + ``set_run_files`` (mass generation, which stamps many
holders into one render); resend delivers an existing record again (``documents.deliver_certificate``).

Decisions:
- **Number and revision.** Per customer + holder (normalised name and address) + kind: the first
  issue gets a new number and revision 1; a re-issue keeps the number, takes revision N+1, and the
  previous revision is superseded (``is_current=False``, ``superseded_at``, ``superseded_by``) and
  stays read-only in the history.
- **Guard first.** ``guard.check`` runs on the data as it will print; a hard block (a policy not in force
  or not on file, an incomplete holder) always refuses; an endorsement or wording block refuses unless
  staff give an override note, which is stored with the result. An uploaded PDF was issued by someone
  else and we cannot read what it prints: the guard's result (the holder check) is recorded, not enforced.
- **Verification.** Every record gets a short random code (10 characters of Crockford base 32, printed
  as two groups of five) and the QR code of ``<BASE_URL>/verify/<code>``, stamped on page 1.
- **Signature and hash.** Every PDF is signed (PAdES) and the SHA-256 of the final signed bytes is
  stored, so ``/verify`` can match a file byte for byte. A generated PDF is signed as it is stamped
  (``signing.Seal``); an uploaded, already-issued PDF keeps its pages as they are and gets a verification
  page at the end (code, QR code, number, revision) and pyHanko's signature over the whole file
  (``stamp_uploaded``); the hash of the file as uploaded is kept in its data.
- Everything flushes; the caller commits (and e-mails through the outbox after the commit).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import date, datetime

import sqlalchemy as sa

from app import activity, events
from app.enums import CertificateSource, RequestType
from app.extensions import db
from app.insurance import guard as guard_mod
from app.insurance.certificate_data import build_certificate_data
from app.insurance.layout import HolderInfo
from app.insurance.rendering import render_certificate_pdf
from app.insurance.signing import get_seal
from app.insurance.stamping import IssueStamp
from app.models import CertificateRequest, Customer, IssuedCertificate, User
from app.models.holders import holder_key
from app.models.insurance import DEFAULT_BANNED_WORDING, BannedWording
from app.storage import get_store

CUSTOMER_SUBJECT = "customer"
KIND_PREFIX = {RequestType.COI: "COI", RequestType.COI_WOS: "WOS", RequestType.POI: "POI"}
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32: no I, L, O, U
CODE_LENGTH = 10
CODE_RE = re.compile(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")


class CertificateBlocked(Exception):
    """The issue guard refused; ``result`` says why (and whether a note could override it)."""

    def __init__(self, result: guard_mod.GuardResult, *, note_given: bool = False):
        self.result = result
        if result.hard_blocks or note_given:
            lead = "This certificate cannot be issued"
        else:
            lead = "This certificate needs an override note to be issued"
        super().__init__(f"{lead}: " + " ".join(result.reasons))


# -- codes ---------------------------------------------------------------------------------------------

def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """A code as typed or scanned (dashes, spaces, lower case, O for 0, I / L for 1) -> stored form, or
    None when it cannot be one of ours (a tampered code answers like an unknown one)."""
    raw = re.sub(r"[\s-]+", "", str(text or "")).upper()
    raw = raw.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    return raw if CODE_RE.fullmatch(raw) else None


def verify_url(code: str) -> str:
    from flask import current_app

    base = (current_app.config.get("BASE_URL") or "").rstrip("/")
    return f"{base}/verify/{code}"


def _unique_code() -> str:
    for _ in range(10):
        code = new_code()
        if db.session.scalar(sa.select(IssuedCertificate.id).where(
                IssuedCertificate.verification_code == code)) is None:
            return code
    raise RuntimeError("could not find a free verification code")  # pragma: no cover - 2^50 codes


def _fresh(make, column, count: int) -> list[str]:
    """``count`` distinct new values of ``make()`` not yet in ``column`` (one query per round, not per value)."""
    out: list[str] = []
    for _ in range(20):
        wanted = {make() for _ in range(count - len(out))} - set(out)
        taken = set(db.session.scalars(sa.select(column).where(column.in_(wanted)))) if wanted else set()
        out += [v for v in wanted if v not in taken]
        if len(out) >= count:
            return out[:count]
    raise RuntimeError("could not find free values")  # pragma: no cover


def _new_number(now: datetime, customer: Customer) -> str:
    for _ in range(20):
        number = f"{now:%Y%m%d}-{customer.id:05d}-{secrets.token_hex(3).upper()}"
        exists = db.session.scalar(sa.select(IssuedCertificate.id).where(
            IssuedCertificate.certificate_number == number))
        if exists is None:
            return number
    raise RuntimeError("could not find a free certificate number")  # pragma: no cover - 16M per day and customer


# -- the wording list ---------------------------------------------------------------------------------------

def ensure_default_wording() -> None:
    """Seed the banned-wording list once (an empty table only; admins edit it afterwards)."""
    if db.session.scalar(sa.select(sa.func.count(BannedWording.id))):
        return
    for phrase, reason in DEFAULT_BANNED_WORDING:
        db.session.add(BannedWording(phrase=phrase, reason=reason, is_active=True))
    db.session.flush()


def active_wording() -> list[tuple[str, str]]:
    ensure_default_wording()
    rows = db.session.scalars(sa.select(BannedWording).where(BannedWording.is_active.is_(True))
                              .order_by(BannedWording.phrase)).all()
    return [(r.phrase, r.reason) for r in rows]


def add_wording(phrase: str, reason: str) -> BannedWording:
    """Add a phrase (or switch an existing one back on). ValueError with a message when it is unusable."""
    phrase = " ".join((phrase or "").split())
    reason = " ".join((reason or "").split())
    if not guard_mod.normalise(phrase):
        raise ValueError("Type the words to refuse.")
    if len(phrase) > 120 or len(reason) > 300:
        raise ValueError("Keep the phrase under 120 characters and the reason under 300.")
    if not reason:
        raise ValueError("Say why the wording is refused: staff see the reason.")
    ensure_default_wording()
    wanted = guard_mod.normalise(phrase)
    for row in db.session.scalars(sa.select(BannedWording)):
        if guard_mod.normalise(row.phrase) == wanted:
            row.is_active, row.reason = True, reason
            db.session.flush()
            return row
    row = BannedWording(phrase=phrase, reason=reason, is_active=True)
    db.session.add(row)
    db.session.flush()
    return row


# -- the guard, with what it needs from the database ---------------------------------------------------------

def policies_by_id(customer: Customer) -> dict[int, object]:
    return {p.id: p for p in customer.policies}


def run_guard(customer: Customer, data: dict, holder: HolderInfo, on: date) -> guard_mod.GuardResult:
    return guard_mod.check(data, policies_by_id(customer), asdict(holder), on, active_wording())


# -- one certificate ---------------------------------------------------------------------------------------------

def _holder_key(holder: HolderInfo) -> str:
    return holder_key(holder.name, holder.address, holder.city, holder.state, holder.zip_code) or "-"


def _filename(kind: RequestType, number: str, holder: HolderInfo, revision: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", holder.name).strip("-")[:50] or "holder"
    return f"{KIND_PREFIX[kind]}-{number}-{slug}-rev{revision}.pdf"


def previous_certificate(customer: Customer, kind: RequestType, holder: HolderInfo) -> IssuedCertificate | None:
    """The current certificate of this customer + holder + kind, if any (locked for the update)."""
    return db.session.scalar(
        sa.select(IssuedCertificate)
        .where(IssuedCertificate.customer_id == customer.id, IssuedCertificate.kind == RequestType(kind),
               IssuedCertificate.holder_key == _holder_key(holder), IssuedCertificate.is_current.is_(True))
        .order_by(IssuedCertificate.revision.desc(), IssuedCertificate.id.desc())
        .limit(1)
        .with_for_update()
    )


def _supersede(previous: IssuedCertificate | None, cert: IssuedCertificate, now: datetime) -> None:
    if previous is not None:
        previous.superseded_by_id = cert.id
        previous.superseded_at = now


def _emit_issued(cert: IssuedCertificate, previous: IssuedCertificate | None, *, now: datetime) -> None:
    events.emit("certificate.issued", "certificate", cert, now=now)
    if previous is not None:
        events.emit("certificate.superseded", "certificate", previous, now=now)


def _unlocked(pdf: bytes) -> bytes:
    """A PDF locked only against editing (an empty open password, which the upload check lets in) saved
    again without the lock: an update to an encrypted file must be encrypted alike, and is not ours to
    sign. Any other PDF as it is."""
    import io

    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(pdf))
        if not reader.is_encrypted or not reader.decrypt(""):
            return pdf
        out = io.BytesIO()
        PdfWriter(clone_from=reader).write(out)
        return out.getvalue()
    except (PdfReadError, ValueError):
        return pdf  # sign_pdf says what is wrong with it


def stamp_uploaded(pdf: bytes, stamp: IssueStamp, *, kind: RequestType, holder: HolderInfo, customer: Customer,
                   on: date) -> bytes:
    """An uploaded, already-issued certificate as it leaves CertDesk: its pages untouched, a verification
    page added at the end (number, revision, holder, insured, issue date, verification code, QR code) and
    the whole file signed, in one incremental update. Raises ``pdf.CertificateDataError`` when the file
    cannot be updated (the upload check lets only readable, unlocked PDFs in)."""
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.signing import UnsignablePdf, sign_pdf
    from app.insurance.stamping import append_verification_page

    facts = [("Certificate", f"{kind.label} {stamp.number}"), ("Revision", str(stamp.revision)),
             ("Certificate holder", holder.name), ("Insured", customer.name), ("Issued", f"{on:%m/%d/%Y}")]
    try:
        return sign_pdf(_unlocked(pdf), before=lambda writer: append_verification_page(writer, stamp, facts))
    except UnsignablePdf as exc:
        raise CertificateDataError(f"The uploaded certificate could not be stamped and signed: {exc}. Upload "
                                   "the PDF again (saved or printed to PDF without a password).") from exc


def issue(customer: Customer, *, kind: RequestType, holder: HolderInfo, actor: User | None, now: datetime,
          request: CertificateRequest | None = None, data: dict | None = None, uploaded_pdf: bytes | None = None,
          holder_id: int | None = None, override_note: str = "") -> IssuedCertificate:
    """Guard, number, render (or keep the uploaded PDF), stamp, sign, hash, store and record one
    certificate. Flushes only.

    Raises ``CertificateBlocked`` when the guard refuses, ``pdf.CertificateDataError`` when ``data`` is
    not given and cannot be built (no policy in force).
    """
    kind = RequestType(kind)
    if uploaded_pdf is None and data is None:
        data = build_certificate_data(customer, kind=kind, holder=holder, on=now.date(), request=request)
    checked = data if data is not None else {"kind": kind.value, "coverages": [], "description": ""}
    result = run_guard(customer, checked, holder, now.date())
    if uploaded_pdf is None and not result.allows(override_note):
        raise CertificateBlocked(result, note_given=bool(override_note.strip()))
    previous = previous_certificate(customer, kind, holder)
    if previous is not None:
        number, revision = previous.certificate_number, max(previous.revision, 0) + 1
        previous.is_current = False
        db.session.flush()
    else:
        number, revision = _new_number(now, customer), 1
    code = _unique_code()
    url = verify_url(code)
    if uploaded_pdf is not None:
        document = stamp_uploaded(uploaded_pdf, IssueStamp(number=number, revision=revision, code=code, url=url),
                                  kind=kind, holder=holder, customer=customer, on=now.date())
        source = CertificateSource.UPLOADED
        stored = {"uploaded": True, "kind": kind.value, "date": now.date().isoformat(), "holder": asdict(holder),
                  "certificate_number": number, "revision": revision,
                  "request_id": request.id if request is not None else None,
                  "verification": {"code": code, "url": url}, "uploaded_sha256": hashlib.sha256(
                      uploaded_pdf).hexdigest()}
    else:
        stored = {**data, "holder": {**(data.get("holder") or {}), **asdict(holder)} if data.get("holder") else
                  asdict(holder), "certificate_number": number, "revision": revision,
                  "verification": {"code": code, "url": url}}
        document = render_certificate_pdf(stored, seal=get_seal(signed_at=now))
        source = CertificateSource.GENERATED
    key = get_store().save(document)
    address = ", ".join(p for p in (holder.address.strip(), holder.city_line) if p)
    cert = IssuedCertificate(
        certificate_number=number, revision=revision, is_current=True, kind=kind, source=source,
        customer_id=customer.id, request_id=request.id if request is not None else None, holder_id=holder_id,
        holder_name=holder.name[:200], holder_email=(holder.email or "")[:254], holder_address=address[:300],
        holder_key=_holder_key(holder), document_key=key, filename=_filename(kind, number, holder, revision),
        data=stored, issued_by_id=actor.id if actor is not None else None, created_at=now,
        sha256=hashlib.sha256(document).hexdigest(), verification_code=code,
        guard=result.to_json(override_note),
    )
    db.session.add(cert)
    db.session.flush()
    _supersede(previous, cert, now)
    _emit_issued(cert, previous, now=now)
    how = "uploaded" if uploaded_pdf is not None else "generated"
    activity.record(CUSTOMER_SUBJECT, customer.id, "certificate_issued", actor=actor, customer_id=customer.id,
                    now=now, message=f"{kind.label} {number} revision {revision} ({how}) for {holder.name}.")
    if result.blocks:
        activity.record(CUSTOMER_SUBJECT, customer.id, "guard_overridden", actor=actor, customer_id=customer.id,
                        now=now, message=f"{number} revision {revision}: issued past the guard ("
                        + " ".join(result.reasons) + f") with the note: {override_note.strip()}")
    return cert


# -- many certificates from one render (mass generation) ---------------------------------------------------------

@dataclass
class BatchEntry:
    cert: IssuedCertificate
    stamp: IssueStamp
    previous: IssuedCertificate | None = None


def allocate_batch(customer: Customer, *, kind: RequestType, datas: list[dict], holders: list[HolderInfo],
                   holder_ids: list[int | None], actor: User | None, now: datetime,
                   generation_run_id: int | None = None, document_key: str = "") -> list[BatchEntry]:
    """Issued-certificate rows for holders stamped into one render (``datas``: each holder's printed
    data, marks included): each its number (kept from the holder's current certificate of this kind,
    else new), the next revision, a verification code; the previous revisions superseded. ``sha256`` and
    ``document_key`` are filled in once the files exist (``set_files``). The guard must have passed for
    the data (the caller checks; see ``run_guard``).

    Idempotent per run: a holder whose current certificate already belongs to ``generation_run_id`` (an
    earlier attempt of the same run) keeps it (same number, revision and code)."""
    kind = RequestType(kind)
    keys = [_holder_key(h) for h in holders]
    current: dict[str, IssuedCertificate] = {}
    for start in range(0, len(keys), 500):
        for cert in db.session.scalars(sa.select(IssuedCertificate).where(
                IssuedCertificate.customer_id == customer.id, IssuedCertificate.kind == kind,
                IssuedCertificate.is_current.is_(True), IssuedCertificate.holder_key.in_(keys[start:start + 500]))
                .with_for_update()):
            if cert.holder_key not in current or cert.revision > current[cert.holder_key].revision:
                current[cert.holder_key] = cert
    entries: list[BatchEntry] = []
    used_numbers: set[str] = set()
    codes = _fresh(new_code, IssuedCertificate.verification_code, len(holders))
    numbers = _fresh(lambda: f"{now:%Y%m%d}-{customer.id:05d}-{secrets.token_hex(3).upper()}",
                     IssuedCertificate.certificate_number, len(holders))
    for data, holder, key, holder_id in zip(datas, holders, keys, holder_ids, strict=True):
        previous = current.get(key)
        if previous is not None and generation_run_id and previous.generation_run_id == generation_run_id:
            ver = (previous.data or {}).get("verification") or {}
            entries.append(BatchEntry(previous, IssueStamp(number=previous.certificate_number,
                                                           revision=previous.revision,
                                                           code=previous.verification_code or "",
                                                           url=ver.get("url") or "")))
            continue
        if previous is not None and previous.certificate_number not in used_numbers:
            number, revision = previous.certificate_number, max(previous.revision, 0) + 1
            previous.is_current = False
            numbers.pop()
        else:
            number, revision, previous = numbers.pop(), 1, None
        used_numbers.add(number)
        code = codes.pop()
        url = verify_url(code)
        address = ", ".join(p for p in (holder.address.strip(), holder.city_line) if p)
        base_data = {k: v for k, v in data.items() if k not in ("holder", "verification")}
        cert = IssuedCertificate(
            certificate_number=number, revision=revision, is_current=True, kind=kind,
            source=CertificateSource.GENERATED, customer_id=customer.id, holder_id=holder_id,
            holder_name=holder.name[:200], holder_email=(holder.email or "")[:254], holder_address=address[:300],
            holder_key=key, document_key=document_key, filename=_filename(kind, number, holder, revision),
            data={**base_data, "holder": asdict(holder), "certificate_number": number, "revision": revision,
                  "verification": {"code": code, "url": url}},
            issued_by_id=actor.id if actor is not None else None, created_at=now, verification_code=code,
            guard={"blocks": [], "warnings": []}, generation_run_id=generation_run_id,
        )
        db.session.add(cert)
        entries.append(BatchEntry(cert, IssueStamp(number=number, revision=revision, code=code, url=url), previous))
    db.session.flush()
    for entry in entries:
        _supersede(entry.previous, entry.cert, now)
    # Mass generation can issue 200,000 certificates in one run: their events are written only while an
    # endpoint subscribes to them (the run itself always ends with ``generation.completed``).
    if events.wanted("certificate.issued") or events.wanted("certificate.superseded"):
        for entry in entries:
            _emit_issued(entry.cert, entry.previous, now=now)
    return entries


def set_run_files(generation_run_id: int, *, document_key: str, sha256: str | None = None) -> None:
    """After mass generation: certificates of the run without a file of their own point at the run's file
    (and, for a combined PDF, carry its SHA-256: that file is what was delivered)."""
    values: dict = {"document_key": document_key}
    if sha256 is not None:
        values["sha256"] = sha256
    db.session.execute(sa.update(IssuedCertificate).where(
        IssuedCertificate.generation_run_id == generation_run_id, IssuedCertificate.document_key == "")
        .values(**values))


# -- reading ------------------------------------------------------------------------------------------------

def find_by_code(code: str) -> IssuedCertificate | None:
    normal = normalise_code(code)
    if normal is None:
        return None
    return db.session.scalar(sa.select(IssuedCertificate).where(IssuedCertificate.verification_code == normal))


def find_by_sha256(digest: str) -> list[IssuedCertificate]:
    return list(db.session.scalars(sa.select(IssuedCertificate).where(IssuedCertificate.sha256 == digest)
                                   .order_by(IssuedCertificate.id)))


@dataclass(frozen=True)
class CertificateState:
    status: str            # "current" | "superseded" | "cancelled" | "expired"
    message: str
    on: date | None = None
    revision: int | None = None


def state_of(cert: IssuedCertificate, today: date) -> CertificateState:
    """The certificate's state now, as the verify page and the API say it.

    Order: superseded (a later revision replaced it) wins, then a printed policy cancelled (on its
    date, even a future one: it is known now), then expired (a printed policy's term ended), else current.
    """
    from app.models.policies import Policy

    if not cert.is_current:
        newer = cert.superseded_by
        if newer is not None:
            return CertificateState("superseded", f"Superseded by revision {newer.revision} on "
                                    f"{newer.created_at:%m/%d/%Y}.", newer.created_at.date(), newer.revision)
        return CertificateState("superseded", "Superseded by a later revision.")
    ids = cert.policy_ids
    policies = list(db.session.scalars(sa.select(Policy).where(Policy.id.in_(ids)))) if ids else []
    cancelled = sorted((p for p in policies if p.is_cancelled and p.cancelled_on is not None),
                       key=lambda p: p.cancelled_on)
    if cancelled:
        when = cancelled[0].cancelled_on
        return CertificateState("cancelled", f"A policy on it was cancelled on {when:%m/%d/%Y}.", when)
    ends = [date.fromisoformat(row["expiry"]) for row in (cert.data or {}).get("coverages") or []
            if row.get("present") and row.get("expiry")]
    if ends and min(ends) < today:
        return CertificateState("expired", f"Expired: a policy on it ended on {min(ends):%m/%d/%Y}.", min(ends))
    return CertificateState("current", "Current.")


# -- re-issue after a renewal or a change of limits ------------------------------------------------------------

def _printed(row: dict) -> dict:
    return {"policy_number": row.get("policy_number", ""), "effective": row.get("effective", ""),
            "expiry": row.get("expiry", ""), "limits": {x["key"]: x["amount"] for x in row.get("limits") or []},
            "addl_insd": bool(row.get("addl_insd")), "subr_wvd": bool(row.get("subr_wvd"))}


def reissue_preview(cert: IssuedCertificate, on: date) -> tuple[dict | None, list[str]]:
    """What a re-issue of ``cert`` would print today, and the differences per row in words (policy number,
    dates, limits, marks). ``(None, [reason])`` when it cannot be built (no policy in force)."""
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.layout import HolderInfo

    holder = HolderInfo.from_dict((cert.data or {}).get("holder") or {"name": cert.holder_name})
    old_rows = {r["line"]: r for r in (cert.data or {}).get("coverages") or [] if r.get("present")}
    marks = {line: {k: bool(r.get(k)) for k in ("addl_insd", "subr_wvd")} for line, r in old_rows.items()}
    try:
        data = build_certificate_data(cert.customer, kind=cert.kind, holder=holder, on=on,
                                      overrides={"coverages": marks, "description": (cert.data or {}).get(
                                          "description")})
    except CertificateDataError as exc:
        return None, [str(exc)]
    changes: list[str] = []
    for row in data.get("coverages") or []:
        old = old_rows.get(row["line"])
        if not row.get("present"):
            if old:
                changes.append(f"{old.get('title')}: no longer printed (no policy in force).")
            continue
        before, after = _printed(old or {}), _printed(row)
        title = row.get("title")
        if old is None:
            changes.append(f"{title}: added (policy {after['policy_number']}).")
            continue
        for key, label in (("policy_number", "policy number"), ("effective", "effective date"),
                           ("expiry", "expiry date")):
            if before[key] != after[key]:
                changes.append(f"{title}: {label} {before[key] or '—'} → {after[key] or '—'}.")
        for key in sorted(set(before["limits"]) | set(after["limits"])):
            if before["limits"].get(key) != after["limits"].get(key):
                changes.append(f"{title}: {key.replace('_', ' ')} {before['limits'].get(key, '—')} → "
                               f"{after['limits'].get(key, '—')}.")
        for key, label in (("addl_insd", "ADDL INSD"), ("subr_wvd", "SUBR WVD")):
            if before[key] != after[key]:
                changes.append(f"{title}: {label} {'Y' if before[key] else 'no'} → {'Y' if after[key] else 'no'}.")
    return data, changes


def certificates_to_reissue(customer: Customer, on: date, limit: int = 500) -> list[tuple[IssuedCertificate,
                                                                                          list[str]]]:
    """The customer's current certificates whose print would change today (a renewal, changed limits or
    dates), each with its per-holder preview of what changes (at most ``limit``). Certificates printing
    exactly what the lines print today are skipped without building their data (mass generation makes
    thousands)."""
    from app.insurance.certificate_data import _policies_in_force

    # What each line prints today, once; only certificates printing something else get a full preview.
    now_printed = {line.value: (p.id, p.policy_number, p.effective_date.isoformat(), p.expiry_date.isoformat(),
                                {k: v for k, v in (p.limits or {}).items() if v not in (None, "")})
                   for line, p in _policies_in_force(customer, on).items()}
    out = []
    for cert in db.session.scalars(sa.select(IssuedCertificate).where(
            IssuedCertificate.customer_id == customer.id, IssuedCertificate.is_current.is_(True),
            IssuedCertificate.source == CertificateSource.GENERATED).order_by(IssuedCertificate.id)):
        rows = {r["line"]: r for r in (cert.data or {}).get("coverages") or [] if r.get("present")}
        printed = {line: (r.get("policy_id"), r.get("policy_number"), r.get("effective"), r.get("expiry"),
                          {x["key"]: x["amount"] for x in r.get("limits") or []}) for line, r in rows.items()
                   if line != "other"}
        if printed == {k: v for k, v in now_printed.items() if k in printed} and set(now_printed) <= set(printed) | {
                "other"}:
            continue
        _data, changes = reissue_preview(cert, on)
        if changes:
            out.append((cert, changes))
            if len(out) >= limit:
                break
    return out


def reissue(cert: IssuedCertificate, *, actor: User | None, now: datetime) -> IssuedCertificate:
    """Issue ``cert`` again as its next revision with what prints today (same holder, kind, marks where
    still backed, description). Raises ``CertificateBlocked`` / ``CertificateDataError`` like ``issue``."""
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.layout import HolderInfo

    data, reasons = reissue_preview(cert, now.date())
    if data is None:
        raise CertificateDataError(" ".join(reasons))
    holder = HolderInfo.from_dict((cert.data or {}).get("holder") or {"name": cert.holder_name})
    return issue(cert.customer, kind=cert.kind, holder=holder, actor=actor, now=now, data=data,
                 holder_id=cert.holder_id)
