"""CSV import and export of the business's customers and of its policies (with endorsements).

The same shape as the holder import (``app.customers.imports``): upload -> every row checked, a preview of
new / changed / unchanged rows with per-row errors, nothing written -> a person confirms -> the rows are
written (by a job with progress for large files) -> re-importing the same file changes nothing.

- Customers are keyed by their external customer number (``external_id``). An empty cell leaves that
  field as it is on an existing customer (a new one gets the defaults: active, ACH, English).
- Policies are keyed by policy number + insurer (NAIC) + line and name their customer by
  ``customer_external_id``. A row states the whole policy: its limits, coverage boxes and endorsements
  replace what is on file. Blanket endorsements are columns holding the form number (or ``yes``);
  endorsements naming a holder go in ``specific_endorsements`` as ``kind|form number|holder name``
  entries separated by ``;``.
- Rows are checked and written by the customer and policy services (``records``, ``policies``), so an
  import refuses exactly what the pages and the API refuse, and writes the same timeline rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app import lifecycle
from app.activity import record
from app.customers.imports import ImportFileError, csv_bytes, decode_csv, join_messages
from app.customers.policies import clean_policy, create_policy, update_policy
from app.customers.records import RecordInvalid, clean_customer, create_customer, update_customer
from app.enums import CoverageLine, ImportKind, ImportStatus
from app.extensions import db
from app.models import Customer, ImportRun, Insurer, Policy, Program, User
from app.models.policies import COVERAGE_FIELDS, LIMIT_KEYS
from app.storage import get_store

Progress = Callable[[int, int], None]
SUBJECT = "record_import"

CUSTOMER_COLUMNS = ["external_id", "name", "contact_name", "contact_email", "contact_phone", "address", "city",
                    "state", "zip", "status", "status_reason", "payment_method", "program", "language"]
LIMIT_COLUMNS = list(dict.fromkeys(k for keys in LIMIT_KEYS.values() for k in keys))
# CSV column -> coverage box name
COVERAGE_COLUMNS = {"coverage_form": "form", "aggregate_basis": "aggregate_basis", "any_auto": "any_auto",
                    "owned_autos": "owned", "hired_autos": "hired", "non_owned_autos": "non_owned",
                    "scheduled_autos": "scheduled", "umbrella_kind": "kind", "per_statute": "per_statute",
                    "proprietor_excluded": "proprietor_excluded"}
BLANKET_COLUMNS = {"blanket_additional_insured": "additional_insured",
                   "blanket_waiver_of_subrogation": "waiver_of_subrogation",
                   "blanket_primary_noncontributory": "primary_noncontributory"}
POLICY_COLUMNS = ["customer_external_id", "line", "naic", "policy_number", "effective_date", "expiry_date", "status",
                  "cancelled_on", "description", *LIMIT_COLUMNS, *COVERAGE_COLUMNS, *BLANKET_COLUMNS,
                  "specific_endorsements"]
COLUMNS = {ImportKind.CUSTOMERS: CUSTOMER_COLUMNS, ImportKind.POLICIES: POLICY_COLUMNS}
REQUIRED = {ImportKind.CUSTOMERS: {"external_id", "name"},
            ImportKind.POLICIES: {"customer_external_id", "line", "naic", "policy_number", "effective_date",
                                  "expiry_date"}}
ALIASES = {"customer_number": "external_id", "customer_no": "external_id", "zip_code": "zip", "e_mail": "contact_email",
           "email": "contact_email", "phone": "contact_phone", "program_name": "program", "naic_number": "naic",
           "customer": "customer_external_id", "number": "policy_number", "effective": "effective_date",
           "expiry": "expiry_date", "expires": "expiry_date"}
YES = {"yes", "y", "true", "1", "x"}

MAX_ROWS = 100_000
INLINE_ROWS = 200     # up to this many rows are checked and written inside the request
ERROR_LIMIT = 500     # rows with errors kept on the run (all are counted)
SAMPLE_ROWS = 20
UPDATE_LIMIT = 200    # changed rows listed in the preview (all are counted)
CHUNK = 500


@dataclass
class Parsed:
    kind: ImportKind
    rows: list[tuple[int, dict[str, str]]]


@dataclass
class Row:
    line: int
    values: dict[str, str]
    messages: list[str] = field(default_factory=list)
    key: Any = None
    action: str = ""          # "new", "update" or "unchanged" for a valid row
    changes: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)   # what the service is called with
    target_id: int | None = None                              # the existing customer / policy
    customer_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.messages


# -- reading the file ------------------------------------------------------------------------------

def _column(text: str) -> str:
    name = "_".join(text.strip().lower().replace("-", " ").replace("/", " ").replace("&", " and ").split())
    return ALIASES.get(name, name)


def parse(data: bytes, kind: ImportKind) -> Parsed:
    text = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row = next(reader, None)
        if not header_row or not any(c.strip() for c in header_row):
            raise ImportFileError("The first line must hold the column names; it is empty.")
        header = [_column(c) for c in header_row]
        missing = [c for c in COLUMNS[kind] if c in REQUIRED[kind] and c not in header]
        if missing:
            other = ImportKind.POLICIES if kind is ImportKind.CUSTOMERS else ImportKind.CUSTOMERS
            hint = f" This looks like a file of {other.label.lower()}; upload it there." \
                if REQUIRED[other] <= set(header) else ""
            raise ImportFileError(
                f"The file is missing the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. The first "
                f"line must name the columns (download the template).{hint}")
        unknown = [h for h in header if h and h not in COLUMNS[kind]]
        if unknown:
            raise ImportFileError(f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown[:10])}. "
                                  f"Use the template's column names: {', '.join(COLUMNS[kind])}.")
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                raise ImportFileError(f"Line {reader.line_num} has more cells than the header has columns; "
                                      "quote cells that contain commas.")
            rows.append((reader.line_num, {name: (cells[i].strip() if i < len(cells) else "")
                                           for i, name in enumerate(header) if name}))
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    except csv.Error as exc:
        raise ImportFileError(f"The file is not valid CSV (line {reader.line_num}: {exc}).") from exc
    if not rows:
        raise ImportFileError("The file has column names but no rows.")
    return Parsed(kind, rows)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _messages(exc: RecordInvalid) -> list[str]:
    return [f"{k}: {v}" for k, v in exc.errors.items()]


def _show(value) -> str:
    if value is None or value == "" or value == {} or value == []:
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
    return str(getattr(value, "value", value))


# -- customers -------------------------------------------------------------------------------------

CUSTOMER_ATTR_LABELS = {"external_id": "external_id", "zip_code": "zip", "program_id": "program"}


def _customer_rows(parsed: Parsed, progress: Progress | None) -> list[Row]:
    ids = sorted({v.get("external_id", "") for _, v in parsed.rows if v.get("external_id")})
    existing: dict[str, Customer] = {}
    for chunk in _chunks(ids):
        existing.update((c.external_id, c) for c in db.session.scalars(
            sa.select(Customer).where(Customer.external_id.in_(chunk))))
    programs = {p.name.strip().lower(): p.id for p in db.session.scalars(sa.select(Program))}
    seen: dict[str, int] = {}
    out: list[Row] = []
    total = len(parsed.rows)
    for index, (line, values) in enumerate(parsed.rows, start=1):
        row = Row(line=line, values=values, key=values.get("external_id", ""))
        payload = {k: v for k, v in values.items() if v != "" and k != "program"}
        program = values.get("program", "")
        if program:
            if program.isdigit() and db.session.get(Program, int(program)) is not None:
                payload["program_id"] = int(program)
            elif program.strip().lower() in programs:
                payload["program_id"] = programs[program.strip().lower()]
            else:
                row.messages.append(f"program: Unknown program \u201c{program[:60]}\u201d: add it to the program "
                                    "list first (Settings \u2192 Programs).")
        customer = existing.get(row.key)
        if row.key and row.key in seen:
            row.messages.append(f"Duplicate of row {seen[row.key]} in this file (same external_id).")
        try:
            clean = clean_customer(payload, existing=customer)
        except RecordInvalid as exc:
            row.messages.extend(_messages(exc))
            clean = {}
        if row.ok:
            seen[row.key] = line
            row.payload = payload
            if customer is None:
                row.action = "new"
            else:
                row.target_id = customer.id
                row.customer_id = customer.id
                row.changes = [f"{CUSTOMER_ATTR_LABELS.get(a, a)}: {_show(getattr(customer, a))} \u2192 {_show(v)}"
                               for a, v in clean.items() if getattr(customer, a) != v]
                row.action = "update" if row.changes else "unchanged"
        out.append(row)
        if progress and index % CHUNK == 0:
            progress(index, total)
    return out


# -- policies --------------------------------------------------------------------------------------

def _policy_payload(values: dict[str, str], row: Row, insurer: Insurer | None) -> dict[str, Any]:
    payload: dict[str, Any] = {k: values.get(k, "") for k in ("line", "policy_number", "effective_date",
                                                                 "expiry_date", "description")}
    if insurer is not None:  # picked from the list by its NAIC number (the row's naic)
        payload["insurer_id"] = insurer.id
    else:
        payload["naic"] = values.get("naic", "")
    payload["status"] = values.get("status", "") or "active"
    payload["cancelled_on"] = values.get("cancelled_on", "") or None
    payload["limits"] = {k: values[k] for k in LIMIT_COLUMNS if values.get(k, "")}
    try:
        line = CoverageLine(values.get("line", "").strip().lower())
    except ValueError:
        line = None
    boxes = COVERAGE_FIELDS.get(line, {}) if line else {}
    coverage = {}
    for column, box in COVERAGE_COLUMNS.items():
        raw = values.get(column, "")
        if not raw:
            continue
        if box not in boxes and raw.strip().lower() in ("no", "n", "false", "0"):
            continue  # a "no" in another line's box says nothing
        coverage[box] = raw
    payload["coverage"] = coverage
    endorsements = []
    for column, kind in BLANKET_COLUMNS.items():
        raw = values.get(column, "").strip()
        if raw and raw.lower() not in ("no", "n", "false", "0"):
            endorsements.append({"kind": kind, "form_number": "" if raw.lower() in YES else raw, "holder_name": None})
    for i, entry in enumerate(e for e in values.get("specific_endorsements", "").split(";") if e.strip()):
        parts = [p.strip() for p in entry.split("|")]
        if len(parts) != 3 or not parts[2]:
            row.messages.append(f"specific_endorsements: entry {i + 1} \u201c{entry.strip()[:60]}\u201d must be "
                                "kind|form number|holder name (e.g. waiver_of_subrogation|WC 00 03 13|Acme LLC).")
            continue
        endorsements.append({"kind": parts[0].lower(), "form_number": parts[1], "holder_name": parts[2]})
    payload["endorsements"] = endorsements
    return payload


def _endorsement_set(endorsements) -> set:
    return {(e.kind.value, e.form_number or "", " ".join((e.holder_name or "").lower().split())) for e in endorsements}


def _policy_changes(policy: Policy, clean: dict[str, Any]) -> list[str]:
    changes = []
    for key, new in clean.items():
        if key == "endorsements":
            before = _endorsement_set(policy.endorsements)
            after = {(e["kind"].value, e["form_number"] or "", " ".join((e["holder_name"] or "").lower().split()))
                     for e in new}
            if before != after:
                changes.append(f"endorsements: {len(before)} \u2192 {len(after)}"
                               if len(before) != len(after) else "endorsements changed")
            continue
        old = getattr(policy, key)
        if key in ("limits", "coverage"):
            old, new = dict(old or {}), dict(new or {})
        if old != new:
            changes.append(f"{key}: {_show(old)} \u2192 {_show(new)}")
    return changes


def _policy_rows(parsed: Parsed, progress: Progress | None) -> list[Row]:
    ext_ids = sorted({v.get("customer_external_id", "") for _, v in parsed.rows if v.get("customer_external_id")})
    customers: dict[str, Customer] = {}
    for chunk in _chunks(ext_ids):
        customers.update((c.external_id, c) for c in db.session.scalars(
            sa.select(Customer).where(Customer.external_id.in_(chunk))))
    insurers = {i.naic: i for i in db.session.scalars(sa.select(Insurer)) if i.naic}
    numbers = sorted({v.get("policy_number", "") for _, v in parsed.rows if v.get("policy_number")})
    on_file: dict[tuple, Policy] = {}
    for chunk in _chunks(numbers):
        for p in db.session.scalars(sa.select(Policy).options(selectinload(Policy.endorsements))
                                    .where(Policy.policy_number.in_(chunk))):
            on_file[(p.policy_number, p.insurer_id, p.line.value)] = p
    seen: dict[tuple, int] = {}
    terms: dict[tuple, list[tuple]] = {}   # (customer, line) -> [(effective, expiry, line no)] of new rows
    out: list[Row] = []
    total = len(parsed.rows)
    for index, (line_no, values) in enumerate(parsed.rows, start=1):
        row = Row(line=line_no, values=values)
        ext = values.get("customer_external_id", "")
        customer = customers.get(ext)
        if customer is None:
            row.messages.append(f"customer_external_id: no customer with number \u201c{ext[:64]}\u201d "
                                "(import the customers first)." if ext
                                else "customer_external_id: This field is required.")
        naic = values.get("naic", "").strip()
        insurer = insurers.get(naic)
        if naic and insurer is None:
            row.messages.append(f"naic: no insurer with NAIC {naic[:10]} in the insurer list (add it first: "
                                "Settings \u2192 Insurers).")
        payload = _policy_payload(values, row, insurer)
        row.key = (values.get("policy_number", ""), insurer.id if insurer else None,
                   values.get("line", "").strip().lower())
        existing = on_file.get(row.key) if insurer else None
        if existing is not None and customer is not None and existing.customer_id != customer.id:
            row.messages.append(f"policy_number: policy {row.key[0]} ({row.key[2]}) with this insurer is on file "
                                f"for another customer (#{existing.customer_id}).")
        if row.key in seen and insurer is not None:
            row.messages.append(f"Duplicate of row {seen[row.key]} in this file (same policy number, insurer and "
                                "line).")
        clean = {}
        if customer is not None and row.ok:
            try:
                clean = clean_policy(payload, customer=customer, existing=existing)
            except RecordInvalid as exc:
                row.messages.extend(_messages(exc))
        if row.ok and existing is None:  # terms of new rows in this file must not overlap each other
            span = (clean["effective_date"], clean.get("cancelled_on") or clean["expiry_date"])
            group = terms.setdefault((customer.id, clean["line"]), [])
            clash = next((o for o in group if span[0] < o[1] and o[0] < span[1]), None)
            if clash:
                row.messages.append(f"effective_date: the term overlaps the {clean['line'].value.replace('_', ' ')} "
                                    f"policy on row {clash[2]} of this file for the same customer.")
            else:
                group.append((*span, line_no))
        if row.ok:
            seen[row.key] = line_no
            row.payload = payload
            row.customer_id = customer.id
            if existing is None:
                row.action = "new"
            else:
                row.target_id = existing.id
                row.changes = _policy_changes(existing, clean)
                row.action = "update" if row.changes else "unchanged"
        out.append(row)
        if progress and index % CHUNK == 0:
            progress(index, total)
    return out


def evaluate(parsed: Parsed, progress: Progress | None = None) -> list[Row]:
    """Check every row against the services and the database; nothing is written."""
    with db.session.no_autoflush:
        if parsed.kind is ImportKind.CUSTOMERS:
            return _customer_rows(parsed, progress)
        return _policy_rows(parsed, progress)


# -- the run ---------------------------------------------------------------------------------------

def transition(run: ImportRun, to: ImportStatus, *, actor: User | None, now: datetime, message: str = "") -> None:
    """Through the lifecycle engine (the same machine as the holder imports); the message is kept on the run."""
    lifecycle.transition(run, to, actor=actor, now=now, note=message or run.filename)
    if message:
        run.message = message[:500]


def start_import(kind: ImportKind, data: bytes, filename: str, *, actor: User | None, now: datetime) -> ImportRun:
    """Read the file (raises ImportFileError) and keep it with a run waiting to be checked."""
    if kind not in COLUMNS:
        raise ImportFileError("Unknown import.")
    parsed = parse(data, kind)
    filename = "".join(ch for ch in (filename or "") if ch.isprintable())[:200] or "upload.csv"
    run = ImportRun(kind=kind, status=ImportStatus.VALIDATING, filename=filename, file_key=get_store().save(data),
                    total_rows=len(parsed.rows), created_by_id=actor.id if actor else None, created_at=now,
                    updated_at=now)
    db.session.add(run)
    db.session.flush()
    record(SUBJECT, run.id, "import_uploaded", actor=actor, now=now,
           message=f"{run.filename}: {run.total_rows} rows ({kind.label.lower()})")
    return run


def runs_inline(run: ImportRun) -> bool:
    return run.total_rows <= INLINE_ROWS


def _load(run: ImportRun) -> Parsed:
    return parse(get_store().read(run.file_key), run.kind)


def check_import(run: ImportRun, *, now: datetime, progress: Progress | None = None) -> ImportRun:
    """Check every row and write the preview on the run; moves it to ``preview``."""
    rows = evaluate(_load(run), progress)
    bad = [r for r in rows if not r.ok]
    good = [r for r in rows if r.ok]
    run.total_rows = run.processed_rows = len(rows)
    run.valid_rows, run.error_rows = len(good), len(bad)
    run.errors = [{"row": r.line, "messages": r.messages} for r in bad[:ERROR_LIMIT]]
    columns = COLUMNS[run.kind][:6]
    counts = {a: sum(1 for r in good if r.action == a) for a in ("new", "update", "unchanged")}
    run.preview = {
        **counts, "existing": counts["update"] + counts["unchanged"], "columns": columns,
        "sample": [{"row": r.line, "action": r.action, "changes": r.changes,
                    "values": [r.values.get(c, "") for c in columns]} for r in good[:SAMPLE_ROWS]],
        "updates": [{"row": r.line, "key": _key_text(run.kind, r), "changes": r.changes}
                    for r in good if r.action == "update"][:UPDATE_LIMIT],
    }
    transition(run, ImportStatus.PREVIEW, actor=None, now=now,
               message=f"{len(good)} valid rows ({counts['new']} new, {counts['update']} changed, "
                       f"{counts['unchanged']} unchanged), {len(bad)} with errors")
    return run


def _key_text(kind: ImportKind, row: Row) -> str:
    if kind is ImportKind.CUSTOMERS:
        return row.values.get("external_id", "")
    return f"{row.values.get('policy_number', '')} ({row.values.get('line', '')}, NAIC {row.values.get('naic', '')})"


def confirm_import(run: ImportRun, *, actor: User | None, now: datetime) -> ImportRun:
    if run.status is ImportStatus.PREVIEW and run.valid_rows == 0:
        raise ImportFileError("No row of this file can be imported; correct the file and upload it again.")
    transition(run, ImportStatus.IMPORTING, actor=actor, now=now)
    run.processed_rows = 0
    return run


def cancel_import(run: ImportRun, *, actor: User | None, now: datetime) -> ImportRun:
    transition(run, ImportStatus.CANCELLED, actor=actor, now=now)
    return run


def apply_import(run: ImportRun, *, actor: User | None, now: datetime,
                 progress: Progress | None = None) -> ImportRun:
    """Write the file's rows through the services, one pass, each row re-checked by the service against the
    database as it is now (rows written earlier in the same file included, so in-file overlaps are still
    refused); a retried job finds what an earlier attempt wrote and leaves it unchanged. Rows the preview
    refused, or that the services refuse now, are skipped and counted; a refused row writes nothing."""
    if run.status is not ImportStatus.IMPORTING:
        return run
    parsed = _load(run)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
    writer = _customer_writer if run.kind is ImportKind.CUSTOMERS else _policy_writer
    write = writer(parsed, actor=actor, now=now)
    total = len(parsed.rows)
    for done, (_line, values) in enumerate(parsed.rows, start=1):
        try:
            counts[write(values)] += 1
        except RecordInvalid:
            counts["skipped"] += 1
        if done % CHUNK == 0 or done == total:
            run.processed_rows = done
            run.created_count, run.updated_count = counts["created"], counts["updated"]
            run.unchanged_count = counts["unchanged"]
            if progress:
                progress(done, total)
    run.processed_rows = run.total_rows
    message = f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
    if counts["skipped"]:
        message += f", {counts['skipped']} rows with errors skipped"
    transition(run, ImportStatus.DONE, actor=actor, now=now, message=message)
    return run


def _customer_writer(parsed: Parsed, *, actor, now):
    ids = sorted({v.get("external_id", "") for _, v in parsed.rows if v.get("external_id")})
    existing: dict[str, Customer] = {}
    for chunk in _chunks(ids):
        existing.update((c.external_id, c) for c in db.session.scalars(
            sa.select(Customer).where(Customer.external_id.in_(chunk))))
    programs = {p.name.strip().lower(): p.id for p in db.session.scalars(sa.select(Program))}
    seen: set[str] = set()

    def write(values: dict[str, str]) -> str:
        key = values.get("external_id", "")
        if not key or key in seen:  # a duplicate in the file was refused by the preview
            return "skipped"
        seen.add(key)
        payload = {k: v for k, v in values.items() if v != "" and k != "program"}
        program = values.get("program", "").strip()
        if program:
            if program.isdigit() and db.session.get(Program, int(program)) is not None:
                payload["program_id"] = int(program)
            elif program.lower() in programs:
                payload["program_id"] = programs[program.lower()]
            else:
                return "skipped"
        customer = existing.get(key)
        if customer is None:
            existing[key] = create_customer(payload, actor=actor, now=now)
            return "created"
        return "updated" if update_customer(customer, payload, actor=actor, now=now) else "unchanged"
    return write


def _policy_writer(parsed: Parsed, *, actor, now):
    ext_ids = sorted({v.get("customer_external_id", "") for _, v in parsed.rows if v.get("customer_external_id")})
    customers: dict[str, Customer] = {}
    for chunk in _chunks(ext_ids):
        customers.update((c.external_id, c) for c in db.session.scalars(
            sa.select(Customer).where(Customer.external_id.in_(chunk))))
    insurers = {i.naic: i for i in db.session.scalars(sa.select(Insurer)) if i.naic}
    numbers = sorted({v.get("policy_number", "") for _, v in parsed.rows if v.get("policy_number")})
    on_file: dict[tuple, Policy] = {}
    for chunk in _chunks(numbers):
        for p in db.session.scalars(sa.select(Policy).options(selectinload(Policy.endorsements))
                                    .where(Policy.policy_number.in_(chunk))):
            on_file[(p.policy_number, p.insurer_id, p.line.value)] = p
    seen: set[tuple] = set()

    def write(values: dict[str, str]) -> str:
        customer = customers.get(values.get("customer_external_id", ""))
        insurer = insurers.get(values.get("naic", "").strip())
        row = Row(line=0, values=values)
        payload = _policy_payload(values, row, insurer)
        if customer is None or insurer is None or row.messages:
            return "skipped"
        key = (values.get("policy_number", ""), insurer.id, values.get("line", "").strip().lower())
        if key in seen:  # a duplicate in the file was refused by the preview
            return "skipped"
        seen.add(key)
        policy = on_file.get(key)
        if policy is None:
            on_file[key] = create_policy(customer, payload, actor=actor, now=now)
            return "created"
        if policy.customer_id != customer.id:
            return "skipped"
        return "updated" if update_policy(policy, payload, actor=actor, now=now) else "unchanged"
    return write


# -- templates and exports ---------------------------------------------------------------------------

EXAMPLE_CUSTOMERS = [
    ["EX-1001", "Example Builders LLC", "Pat Example", "pat@builders.example", "(555) 555-0101", "100 Example Street",
     "Springfield", "IL", "62701", "active", "", "card", "", "en"],
    ["EX-1002", "Sample Landscaping Inc", "Sam Sample", "sam@landscaping.example", "", "200 Sample Avenue",
     "Riverton", "WY", "82501", "suspended", "Unpaid invoice 1234", "ach", "", "es"],
]


def _policy_example(ext, line, number, limits: dict, coverage: dict, blanket: dict, specific=""):
    row = {"customer_external_id": ext, "line": line, "naic": "99999", "policy_number": number,
           "effective_date": "2026-01-01", "expiry_date": "2027-01-01", "status": "active", "cancelled_on": "",
           "description": "", **limits, **coverage, **blanket, "specific_endorsements": specific}
    return [row.get(c, "") for c in POLICY_COLUMNS]


EXAMPLE_POLICIES = [
    _policy_example("EX-1001", "general_liability", "EX-GL-1", {"each_occurrence": "1000000",
                    "general_aggregate": "2000000"}, {"coverage_form": "occurrence", "aggregate_basis": "project"},
                    {"blanket_additional_insured": "CG 20 10", "blanket_primary_noncontributory": "CG 20 01"}),
    _policy_example("EX-1001", "workers_comp", "EX-WC-1", {"el_each_accident": "1000000",
                    "el_disease_each_employee": "1000000", "el_disease_policy_limit": "1000000"},
                    {"per_statute": "yes"}, {"blanket_waiver_of_subrogation": "WC 00 03 13"},
                    "additional_insured|CG 20 26|Example Holder One LLC"),
]


def template_csv(kind: ImportKind) -> bytes:
    return csv_bytes(COLUMNS[kind], EXAMPLE_CUSTOMERS if kind is ImportKind.CUSTOMERS else EXAMPLE_POLICIES)


def errors_csv(run: ImportRun) -> bytes:
    return csv_bytes(["row", "errors"], ([e["row"], join_messages(e["messages"])] for e in run.errors))


def customers_csv() -> bytes:
    """Every customer in the import format (formulas neutralised), so an export can be re-imported."""
    programs = {p.id: p.name for p in db.session.scalars(sa.select(Program))}

    def rows():
        for c in db.session.scalars(sa.select(Customer).order_by(Customer.external_id, Customer.id)
                                    .execution_options(yield_per=1000)):
            yield [c.external_id or "", c.name, c.contact_name, c.contact_email, c.contact_phone, c.address, c.city,
                   c.state, c.zip_code, c.status.value, c.status_reason or "", c.payment_method.value,
                   programs.get(c.program_id, ""), c.language.value]
    return csv_bytes(CUSTOMER_COLUMNS, rows())


def policies_csv() -> bytes:
    """Every policy with its endorsements in the import format (formulas neutralised)."""
    reverse_coverage = {box: column for column, box in COVERAGE_COLUMNS.items()}
    reverse_blanket = {kind: column for column, kind in BLANKET_COLUMNS.items()}

    def rows():
        stmt = (sa.select(Policy).options(selectinload(Policy.endorsements), selectinload(Policy.insurer),
                                          selectinload(Policy.customer))
                .order_by(Policy.customer_id, Policy.line, Policy.effective_date, Policy.id))
        for p in db.session.scalars(stmt):
            row = {"customer_external_id": p.customer.external_id or "", "line": p.line.value,
                   "naic": p.naic_number, "policy_number": p.policy_number,
                   "effective_date": p.effective_date.isoformat(), "expiry_date": p.expiry_date.isoformat(),
                   "status": p.status.value, "cancelled_on": p.cancelled_on.isoformat() if p.cancelled_on else "",
                   "description": p.description or ""}
            row.update({k: str(v) for k, v in (p.limits or {}).items() if k in LIMIT_COLUMNS})
            for box, value in (p.coverage or {}).items():
                if box in reverse_coverage:
                    row[reverse_coverage[box]] = ("yes" if value else "no") if isinstance(value, bool) else value
            specific = []
            for e in p.endorsements:
                if e.is_blanket and e.kind.value in reverse_blanket:
                    row[reverse_blanket[e.kind.value]] = e.form_number or "yes"
                else:
                    specific.append(f"{e.kind.value}|{e.form_number}|{e.holder_name or ''}")
            row["specific_endorsements"] = "; ".join(specific)
            yield [row.get(c, "") for c in POLICY_COLUMNS]
    return csv_bytes(POLICY_COLUMNS, rows())
