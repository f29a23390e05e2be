"""Two-pass CSV import of holders (pass 1) and customer <-> holder links (pass 2).

1. ``start_import`` reads the upload: UTF-8 with or without BOM (anything else gets a clear message)
   and the header (missing columns get a clear message). Nothing but the file and an ImportRun is stored.
2. ``check_import`` checks every row (missing values, bad state or ZIP, unknown customer or holder,
   duplicates within the file) and writes a preview: how many rows are new, already there, or wrong.
3. ``apply_import`` (after a person confirms) writes the valid rows. Holders are matched on their
   normalised name + address and links on (customer, holder), so importing the same file twice
   creates nothing new.

Small files are checked and written inside the request; large ones by a job that reports progress.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from app import lifecycle
from app.activity import record
from app.csvio import csv_safe
from app.customers.holders import FLAG_LABELS, FLAGS, HolderError, HolderValues, clean_holder
from app.enums import ImportKind, ImportStatus
from app.extensions import db
from app.models import Customer, CustomerHolder, Holder, ImportRun, User
from app.models.holders import holder_key
from app.storage import get_store
from app.validation import parse_id

Progress = Callable[[int, int], None]

COLUMNS: dict[ImportKind, list[str]] = {
    ImportKind.HOLDERS: ["name", "email", "phone", "address", "city", "state", "zip"],
    ImportKind.LINKS: ["customer_id", "holder_name", "address", "city", "state", "zip", *FLAGS],
}
REQUIRED: dict[ImportKind, set[str]] = {
    ImportKind.HOLDERS: {"name", "address", "city", "state", "zip"},
    ImportKind.LINKS: {"customer_id", "holder_name", "address", "city", "state", "zip"},
}
# Neutral examples: fictional holders that are not in the demo data (the .example domain, 555 numbers), so
# importing a template as it is shows what an import does without touching anything that exists.
EXAMPLES: dict[ImportKind, list[list[str]]] = {
    ImportKind.HOLDERS: [
        ["Example Holder One LLC", "certificates@holder-one.example", "(555) 555-0101", "100 Example Street",
         "Springfield", "IL", "62701"],
        ["Example Holder Two Inc", "", "", "200 Sample Avenue", "Riverton", "WY", "82501"],
    ],
    ImportKind.LINKS: [
        ["1", "Example Holder One LLC", "100 Example Street", "Springfield", "IL", "62701", "yes", "no", "no"],
        ["1", "Example Holder Two Inc", "200 Sample Avenue", "Riverton", "WY", "82501", "yes", "yes", "yes"],
    ],
}
ALIASES = {
    "zip_code": "zip", "zipcode": "zip", "postal_code": "zip", "e_mail": "email", "holder": "holder_name",
    "customer": "customer_id", "customer_number": "customer_id", "address1": "address", "street": "address",
    "ai": "additional_insured", "wos": "waiver_of_subrogation", "pnc": "primary_noncontributory",
    "primary_and_noncontributory": "primary_noncontributory", "primary_non_contributory": "primary_noncontributory",
}
TRUE_WORDS = {"yes", "y", "true", "1", "x"}
FALSE_WORDS = {"no", "n", "false", "0", ""}

MAX_ROWS = 100_000
MAX_ID = 2**31 - 1         # ids are 32-bit integers: a bigger number is simply not found
INLINE_ROWS = 500          # up to this many rows are checked and written inside the request
ERROR_LIMIT = 500          # rows with errors kept on the run (all are counted)
SAMPLE_ROWS = 20
UPDATE_LIMIT = 200        # flag changes listed in the preview (all are counted)
CUSTOMER_LINKS = 10       # customers linked from a links import's page
CHUNK = 1000


class ImportFileError(ValueError):
    """The file as a whole cannot be read; the message says why and what to do."""


@dataclass
class ParsedFile:
    kind: ImportKind
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line number in the file, values by column name)


@dataclass
class RowResult:
    line: int
    values: dict[str, str]
    messages: list[str] = field(default_factory=list)
    key: str = ""
    customer_id: int | None = None
    exists: bool = False
    holder_id: int | None = None
    action: str = ""  # what confirming does with a valid row: "new", "update" (link flags) or "unchanged"
    changes: list[str] = field(default_factory=list)  # for "update": "Waiver of subrogation: no \u2192 yes"
    flags: dict[str, bool] = field(default_factory=dict)
    cleaned: HolderValues | None = None

    @property
    def ok(self) -> bool:
        return not self.messages


def join_messages(messages: Iterable[str]) -> str:
    """One sentence per message: "state: Use ... (or DC). zip: Use ..." (no doubled punctuation)."""
    parts = []
    for message in messages:
        text = message.strip().rstrip(";").strip()
        if text:
            parts.append(text if text[-1] in ".!?" else text + ".")
    return " ".join(parts)


# -- reading the file ------------------------------------------------------------------------

def decode_csv(data: bytes) -> str:
    """UTF-8 text with or without a BOM; anything else raises ImportFileError with a clear message."""
    if not data or not data.strip():
        raise ImportFileError("The file is empty.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError("This file is saved as UTF-16 text. Save it as \u201cCSV UTF-8 (comma delimited)\u201d "
                              "and upload it again.")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        raise ImportFileError("This is not a CSV text file (it contains binary data). Upload a CSV saved as UTF-8.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line} cannot be read; it looks like "
            "another encoding such as Latin-1 / Windows-1252). Save it as \u201cCSV UTF-8\u201d and upload it again."
        ) from exc


def _column_name(text: str) -> str:
    name = "_".join(text.strip().lower().replace("-", " ").replace("/", " ").replace("&", " and ").split())
    return ALIASES.get(name, name)


def parse_csv(data: bytes, kind: ImportKind) -> ParsedFile:
    text = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row = next(reader, None)
        if not header_row or not any(cell.strip() for cell in header_row):
            raise ImportFileError("The first line must hold the column names; it is empty.")
        header = [_column_name(cell) for cell in header_row]
        missing = [c for c in COLUMNS[kind] if c in REQUIRED[kind] and c not in header]
        if missing:
            other = ImportKind.LINKS if kind is ImportKind.HOLDERS else ImportKind.HOLDERS
            hint = ""
            if REQUIRED[other] <= set(header):
                hint = f" This looks like a file for {other.label.lower()}; upload it there."
            raise ImportFileError(
                f"The file is missing the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
                f"The first line must name the columns: {', '.join(COLUMNS[kind])} (download the template).{hint}"
            )
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
            rows.append((reader.line_num, values))
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    except csv.Error as exc:
        raise ImportFileError(f"The file is not valid CSV (line {reader.line_num}: {exc}).") from exc
    if not rows:
        raise ImportFileError("The file has column names but no rows.")
    return ParsedFile(kind=kind, header=header, rows=rows)


# -- checking rows ---------------------------------------------------------------------------------

def _holder_values(values: dict[str, str], name_column: str) -> dict[str, str]:
    return {"name": values.get(name_column, ""), "email": values.get("email", ""), "phone": values.get("phone", ""),
            "address": values.get("address", ""), "city": values.get("city", ""), "state": values.get("state", ""),
            "zip_code": values.get("zip", "")}


def _field_messages(exc: HolderError, name_column: str) -> list[str]:
    names = {"zip_code": "zip", "name": name_column}
    return [f"{names.get(k, k)}: {v}" for k, v in exc.errors.items()]


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _matching(column, values: list):
    """A SELECT filter ``column IN values`` that stays fast when the statement is prepared.

    psycopg prepares a statement run five times, PostgreSQL then plans it generically, and a generic
    ``= ANY($1)`` compares every row with every value (0.4 s per 500 keys on 20,000 holders); joining
    ``unnest($1)`` plans an index lookup per key instead. SQLite gets a plain IN list.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        array = sa.bindparam(None, list(values), type_=ARRAY(column.type))
        keys = sa.func.unnest(array).table_valued("value").render_derived()
        return keys, column == keys.c.value
    return None, column.in_(values)


def _select_matching(stmt, column, values: list):
    joined, condition = _matching(column, values)
    if joined is not None:
        return stmt.join(joined, condition)
    return stmt.where(condition)


def _existing_holders(keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(keys)), 500):
        found.update(db.session.execute(
            _select_matching(sa.select(Holder.normalized_key, Holder.id), Holder.normalized_key, chunk)
        ).all())
    return found


def evaluate(parsed: ParsedFile, progress: Progress | None = None) -> list[RowResult]:
    """Check every row; nothing is written. Results carry per-row messages and what exists already."""
    results: list[RowResult] = []
    seen: dict[object, int] = {}
    total = len(parsed.rows)
    name_column = "name" if parsed.kind is ImportKind.HOLDERS else "holder_name"
    for index, (line, values) in enumerate(parsed.rows, start=1):
        result = RowResult(line=line, values=values)
        try:
            result.cleaned = clean_holder(_holder_values(values, name_column))
            result.key = result.cleaned.key
        except HolderError as exc:
            result.messages.extend(_field_messages(exc, name_column))
            result.key = holder_key(values.get(name_column, ""), values.get("address", ""), values.get("city", ""),
                                    values.get("state", ""), values.get("zip", ""))
        if parsed.kind is ImportKind.LINKS:
            raw_id = values.get("customer_id", "")
            if not raw_id:
                result.messages.append("customer_id: This field is required.")
            elif not (raw_id.isascii() and raw_id.isdigit()):  # "²".isdigit() is true
                result.messages.append(f"customer_id: \u201c{raw_id[:30]}\u201d is not a customer ID (a number).")
            elif parse_id(raw_id) is None:
                result.messages.append(f"customer_id: no customer with ID {raw_id[:30]}.")
            else:
                result.customer_id = parse_id(raw_id)
            for flag in FLAGS:
                word = values.get(flag, "").strip().lower()
                if word in TRUE_WORDS:
                    result.flags[flag] = True
                elif word in FALSE_WORDS:
                    result.flags[flag] = False
                else:
                    result.messages.append(f"{flag}: use yes or no.")
        identity = (result.customer_id, result.key) if parsed.kind is ImportKind.LINKS else result.key
        if result.key and identity in seen:
            result.messages.append(f"Duplicate of row {seen[identity]} in this file (same "
                                   + ("customer and holder)." if parsed.kind is ImportKind.LINKS
                                      else "name and address)."))
        elif result.key and result.ok:  # a broken row does not claim the identity
            seen[identity] = line
        results.append(result)
        if progress and index % CHUNK == 0:
            progress(index // 2, total)
    _check_against_database(parsed.kind, results, progress, total)
    return results


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _check_against_database(kind: ImportKind, results: list[RowResult], progress: Progress | None,
                            total: int) -> None:
    candidates = [r for r in results if r.key]
    holders = _existing_holders([r.key for r in candidates])
    if kind is ImportKind.HOLDERS:
        for r in candidates:
            r.holder_id = holders.get(r.key)
            r.exists = r.holder_id is not None
            r.action = "unchanged" if r.exists else "new"  # an existing holder is never changed by an import
        if progress:
            progress(total, total)
        return
    ids = sorted({r.customer_id for r in results if r.customer_id is not None})
    customers: set[int] = set()
    for chunk in _chunks(ids, 500):
        customers.update(db.session.scalars(_select_matching(sa.select(Customer.id), Customer.id, chunk)))
    pairs: dict[tuple[int, int], dict[str, bool]] = {}
    holder_ids = sorted(set(holders.values()))
    for chunk in _chunks(holder_ids, 500):
        for row in db.session.execute(_select_matching(
            sa.select(CustomerHolder.customer_id, CustomerHolder.holder_id,
                      *(getattr(CustomerHolder, f) for f in FLAGS)), CustomerHolder.holder_id, chunk)
        ):
            pairs[(row[0], row[1])] = {f: bool(row[2 + i]) for i, f in enumerate(FLAGS)}
    for r in results:
        if r.customer_id is not None and r.customer_id not in customers:
            r.messages.append(f"customer_id: no customer with ID {r.customer_id}.")
        if r.key and not any(m.startswith(("holder_name", "address", "city", "state", "zip")) for m in r.messages):
            r.holder_id = holders.get(r.key)
            if r.holder_id is None:
                r.messages.append("No holder with this name and address: import it first (pass 1).")
        if r.ok:
            current = pairs.get((r.customer_id, r.holder_id))
            r.exists = current is not None
            if current is None:
                r.action = "new"
            else:
                r.changes = [f"{FLAG_LABELS[f]}: {_yn(current[f])} \u2192 {_yn(r.flags.get(f, False))}"
                             for f in FLAGS if current[f] != r.flags.get(f, False)]
                r.action = "update" if r.changes else "unchanged"
    if progress:
        progress(total, total)


# -- the run lifecycle -------------------------------------------------------------------------

def transition(run: ImportRun, to: ImportStatus, *, actor: User | None, now: datetime, message: str = "") -> None:
    """Through the lifecycle engine; the message is also kept on the run for its page."""
    lifecycle.transition(run, to, actor=actor, now=now, note=message or run.filename)
    if message:
        run.message = message[:500]


def start_import(kind: ImportKind, data: bytes, filename: str, *, actor: User | None, now: datetime) -> ImportRun:
    """Read the file (raises ImportFileError) and store it with a run waiting to be checked."""
    parsed = parse_csv(data, kind)
    filename = "".join(ch for ch in (filename or "") if ch.isprintable())[:200] or "upload.csv"
    run = ImportRun(kind=kind, status=ImportStatus.VALIDATING, filename=filename,
                    file_key=get_store().save(data), total_rows=len(parsed.rows),
                    created_by_id=actor.id if actor else None, created_at=now, updated_at=now)
    db.session.add(run)
    db.session.flush()
    record("holder_import", run.id, "import_uploaded", actor=actor, now=now,
           message=f"{run.filename}: {run.total_rows} rows ({kind.label.lower()})")
    return run


def runs_inline(run: ImportRun) -> bool:
    return run.total_rows <= INLINE_ROWS


def _load(run: ImportRun) -> ParsedFile:
    return parse_csv(get_store().read(run.file_key), run.kind)


def check_import(run: ImportRun, *, now: datetime, progress: Progress | None = None) -> ImportRun:
    """Check every row and write the preview; moves the run to ``preview`` (nothing else is written)."""
    parsed = _load(run)
    results = evaluate(parsed, progress)
    bad = [r for r in results if not r.ok]
    good = [r for r in results if r.ok]
    run.total_rows = len(results)
    run.processed_rows = len(results)
    run.valid_rows = len(good)
    run.error_rows = len(bad)
    run.errors = [{"row": r.line, "messages": r.messages} for r in bad[:ERROR_LIMIT]]
    sample_columns = COLUMNS[run.kind][:7]
    counts = {action: sum(1 for r in good if r.action == action) for action in ("new", "update", "unchanged")}
    run.preview = {
        **counts,
        "existing": counts["update"] + counts["unchanged"],
        "columns": sample_columns,
        "sample": [{"row": r.line, "exists": r.exists, "action": r.action, "changes": r.changes,
                    "values": [r.values.get(c, "") for c in sample_columns]} for r in good[:SAMPLE_ROWS]],
        # every flag change confirming would make (the first UPDATE_LIMIT), so nothing changes unseen
        "updates": [{"row": r.line, "customer_id": r.customer_id, "holder": r.cleaned.name if r.cleaned else "",
                     "changes": r.changes} for r in good if r.action == "update"][:UPDATE_LIMIT],
        "customer_ids": sorted({r.customer_id for r in good if r.customer_id is not None})[:CUSTOMER_LINKS],
    }
    transition(run, ImportStatus.PREVIEW, actor=None, now=now,
               message=f"{len(good)} valid rows, {len(bad)} with errors")
    return run


def confirm_import(run: ImportRun, *, actor: User | None, now: datetime) -> ImportRun:
    if run.status is ImportStatus.PREVIEW and run.valid_rows == 0:
        raise ImportFileError("No row of this file can be imported; correct the file and upload it again.")
    transition(run, ImportStatus.IMPORTING, actor=actor, now=now)
    run.processed_rows = 0
    return run


def cancel_import(run: ImportRun, *, actor: User | None, now: datetime) -> ImportRun:
    transition(run, ImportStatus.CANCELLED, actor=actor, now=now)
    return run


def _insert(model):
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported databases
        return sa.insert(model)
    return insert(model)


def apply_import(run: ImportRun, *, now: datetime, progress: Progress | None = None) -> ImportRun:
    """Write the valid rows (re-checked against the database as it is now). Safe to run twice."""
    if run.status is not ImportStatus.IMPORTING:
        return run
    results = [r for r in evaluate(_load(run)) if r.ok]
    created = updated = unchanged = 0
    total = len(results)
    for done, chunk in enumerate(_chunks(results), start=1):
        if run.kind is ImportKind.HOLDERS:
            c, u = _write_holders(chunk, now)
        else:
            c, u = _write_links(chunk, now)
        created += c
        updated += u
        unchanged += len(chunk) - c - u
        run.processed_rows = min(total, done * CHUNK)
        run.created_count, run.updated_count, run.unchanged_count = created, updated, unchanged
        if progress:
            progress(run.processed_rows, total)
    run.processed_rows = run.total_rows
    transition(run, ImportStatus.DONE, actor=None, now=now,
               message=f"{created} created, {updated} updated, {unchanged} unchanged")
    return run


def _write_holders(chunk: list[RowResult], now: datetime) -> tuple[int, int]:
    # ``exists`` was just checked against the database; a holder another import wrote since is skipped by
    # ON CONFLICT DO NOTHING on the unique key.
    fresh = []
    for r in chunk:
        if r.exists:
            continue
        v = r.cleaned
        fresh.append({"name": v.name, "email": v.email, "phone": v.phone, "address": v.address, "city": v.city,
                      "state": v.state, "zip_code": v.zip_code, "normalized_key": v.key, "created_at": now})
    if fresh:
        db.session.execute(_insert(Holder).on_conflict_do_nothing(index_elements=["normalized_key"]), fresh)
    return len(fresh), 0


def _write_links(chunk: list[RowResult], now: datetime) -> tuple[int, int]:
    holders = _existing_holders([r.key for r in chunk])
    holder_ids = sorted(set(holders.values()))
    links = {
        (link.customer_id, link.holder_id): link
        for link in db.session.scalars(_select_matching(sa.select(CustomerHolder), CustomerHolder.holder_id,
                                                        holder_ids))
    }
    fresh, updated = [], 0
    for r in chunk:
        holder_id = holders.get(r.key)
        if holder_id is None:
            continue
        link = links.get((r.customer_id, holder_id))
        if link is None:
            fresh.append({"customer_id": r.customer_id, "holder_id": holder_id, "created_at": now, **r.flags})
            links[(r.customer_id, holder_id)] = CustomerHolder()  # a duplicate later in the chunk is no new row
        elif any(getattr(link, f) != r.flags.get(f, False) for f in FLAGS) and link.id is not None:
            for flag in FLAGS:
                setattr(link, flag, r.flags.get(flag, False))
            updated += 1
    if fresh:
        db.session.execute(
            _insert(CustomerHolder).on_conflict_do_nothing(index_elements=["customer_id", "holder_id"]), fresh
        )
    db.session.flush()
    return len(fresh), updated


# -- CSV output ----------------------------------------------------------------------------------

def csv_bytes(header: list[str], rows: Iterable[Iterable]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(h) for h in header])
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_csv(kind: ImportKind) -> bytes:
    return csv_bytes(COLUMNS[kind], EXAMPLES[kind])


def errors_csv(run: ImportRun) -> bytes:
    return csv_bytes(["row", "errors"], ([e["row"], join_messages(e["messages"])] for e in run.errors))


def links_csv(customer_id: int) -> bytes:
    """A customer's additional interests in the pass-2 format (so an export can be re-imported)."""
    from app.customers.holders import linked_holders

    def yn(value: bool) -> str:
        return "yes" if value else "no"

    rows = ([customer_id, link.holder.name, link.holder.address, link.holder.city, link.holder.state,
             link.holder.zip_code, *(yn(getattr(link, f)) for f in FLAGS)] for link in linked_holders(customer_id))
    return csv_bytes(COLUMNS[ImportKind.LINKS], rows)
