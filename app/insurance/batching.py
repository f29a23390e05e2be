"""Mass generation: one certificate per holder, as a ZIP of PDFs or one merged PDF.

The common part is rendered once (``rendering``) and each holder is stamped into it (``stamping``);
when the wording names the holder, each certificate is rendered in full instead, on two processes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from app.insurance import rendering
from app.insurance.layout import HolderInfo, description_lines
from app.insurance.rendering import (
    description_capacity,
    get_env,
    render_base_pdf,
    render_certificate_pdf,
    render_html,
)
from app.insurance.stamping import IssueStamp, Stamper, _serialize, _stream, flate_stream, link_annotation

# -- mass generation --------------------------------------------------------------------------------------

def _holder_specific(data: dict) -> bool:
    """Does the common part name the holder (a WOS description does)? Then each holder needs its own."""
    name = " ".join(str((data.get("holder") or {}).get("name") or "").split())
    return bool(name) and name in " ".join(str(data.get("description") or "").split())


def _flat(text: str) -> str:
    return " ".join(str(text or "").split())


def _data_for(data: dict, holder: HolderInfo) -> dict:
    old = _flat((data.get("holder") or {}).get("name"))
    description = str(data.get("description") or "")
    if old:
        description = "\n".join(_flat(p).replace(old, _flat(holder.name)) if old in _flat(p) else p
                                for p in description.split("\n"))
    return {**data, "holder": asdict(holder), "description": description}


MARKER = "QZXMARK{}QZX"


def _find_markers(pdf_bytes: bytes, count: int, markers: list[str] | None = None) -> list[tuple[float, float]] | None:
    """Where the marker texts were drawn on page 1: (x, baseline y) of each, or None if not all found.
    ``markers`` defaults to the name-line markers ``MARKER.format(0..count-1)``."""
    from pypdf import PdfReader

    wanted = markers if markers is not None else [MARKER.format(j) for j in range(count)]
    found: dict[int, tuple[float, float]] = {}

    def visit(text, cm, tm, font_dict, font_size):
        for j, marker in enumerate(wanted):
            if marker in text and j not in found:
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                found[j] = (round(x, 2), round(y, 2))

    PdfReader(io.BytesIO(pdf_bytes)).pages[0].extract_text(visitor_text=visit)
    if len(found) != len(wanted):
        return None
    return [found[j] for j in range(len(wanted))]


NUMBER_MARKERS = ["QZXNUMQZX", "QZXREVQZX"]


def _prepare_batch(data: dict, holders: list[HolderInfo], *, numbered: bool = False) -> Stamper | None:
    """The base certificate all holders are stamped into, or None when each needs a full render.

    When the description names the holder in a paragraph of its own (the WOS wording), the base keeps
    blank lines there (as many as the longest name needs) and each holder's name is stamped into them;
    their positions are found by rendering once with markers in those lines. ``numbered``: each holder
    gets its own certificate number and revision, stamped into the COVERAGES bar the same way (the
    additional remarks pages of a batch then say "certificate" without the number).
    """
    if numbered:
        data = {**data, "certificate_number": "", "revision": ""}
    if not _holder_specific(data):
        if not numbered:
            return Stamper(render_base_pdf(data))
        lines = description_lines(data.get("description", ""))
        marked = {**data, "certificate_number": NUMBER_MARKERS[0], "revision": NUMBER_MARKERS[1]}
        slots = _find_markers(rendering.html_to_pdf(render_html(marked, lines)), 0, NUMBER_MARKERS)
        if slots is None:  # pragma: no cover - the markers are plain text in fixed cells
            return None
        return Stamper(rendering.html_to_pdf(render_html(data, lines)), number_slots=tuple(slots))
    old = _flat((data.get("holder") or {}).get("name"))
    paragraphs = str(data.get("description") or "").split("\n")
    at = [i for i, p in enumerate(paragraphs) if _flat(p) == old]
    if len(at) != 1 or any(old in _flat(p) for i, p in enumerate(paragraphs) if i != at[0]):
        return None  # the name is inside a sentence: only a full render lays it out right
    before = description_lines("\n".join(paragraphs[:at[0]]))
    after = description_lines("\n".join(paragraphs[at[0] + 1:]))
    k = max(len(description_lines(h.name)) for h in holders) or 1
    capacity = description_capacity(data)
    if len(before) + k + len(after) > capacity and len(before) + k > capacity - 1:
        return None  # the name lines would be on the additional remarks page
    markers = [MARKER.format(j) for j in range(k)] + (NUMBER_MARKERS if numbered else [])
    marked = {**data, "certificate_number": NUMBER_MARKERS[0], "revision": NUMBER_MARKERS[1]} if numbered else data
    slots = _find_markers(rendering.html_to_pdf(render_html(marked, before + markers[:k] + after)), k, markers)
    if slots is None:  # pragma: no cover - the marker is plain text in a fixed line
        return None
    base = rendering.html_to_pdf(render_html(data, before + ["\u00a0"] * k + after))
    return Stamper(base, name_slots=tuple(slots[:k]), number_slots=tuple(slots[k:]))


def _write_merged_fast(stamper: Stamper, fh, holders: list[HolderInfo], tick: Callable[[], None],
                       stamps: list[IssueStamp] | None = None) -> None:
    """One PDF: the base file once, then per holder page objects that share its content and fonts."""
    from pypdf import PdfReader
    from pypdf.generic import DictionaryObject, NameObject

    fh.write(stamper.base)
    pos = len(stamper.base)
    if not stamper.base.endswith(b"\n"):
        fh.write(b"\n")
        pos += 1
    first_num = n = stamper.size
    offsets: list[int] = []

    def put(body: bytes) -> int:
        nonlocal n, pos
        offsets.append(pos)
        chunk = b"%d 0 obj\n" % n + body + b"\nendobj\n"
        fh.write(chunk)
        pos += len(chunk)
        n += 1
        return n - 1

    linked = bool(stamps) and any(st.url for st in stamps)
    pages_num = (stamper.size + 1 + (3 if linked else 2) * len(holders)
                 + len(holders) * len(stamper.other_pages))
    q_num = put(_stream(b"q\n"))
    kids: list[int] = []
    parent = b"%d 0 R" % pages_num
    for index, holder in enumerate(holders):
        stamp = stamps[index] if stamps else None
        text_num = put(flate_stream(stamper.content(holder, stamp)))
        annot = put(link_annotation(stamp)) if linked else None
        kids.append(put(stamper._first_page(parent, (q_num, text_num), annot)))
        for rest in stamper.other_pages:
            kids.append(put(b"<<" + rest + b" /Parent " + parent + b">>"))
        tick()
    assert n == pages_num
    put(b"<< /Type /Pages /Count %d /Kids [" % len(kids) + b" ".join(b"%d 0 R" % k for k in kids) + b"] >>")
    root = PdfReader(io.BytesIO(stamper.base)).trailer["/Root"].get_object()
    catalog = DictionaryObject({NameObject(k): v for k, v in root.items() if k != "/Pages"})
    catalog_num = put(_serialize(catalog)[:-2] + b" /Pages %d 0 R >>" % pages_num)
    xref_pos = pos
    lines = [b"xref\n0 1\n0000000000 65535 f \n%d %d\n" % (first_num, len(offsets))]
    lines += [b"%010d 00000 n \n" % off for off in offsets]
    trailer = b"trailer\n<< /Size %d /Root %d 0 R /Prev %d" % (n, catalog_num, stamper.prev_xref)
    if stamper.info_ref is not None:
        trailer += b" /Info %d 0 R" % stamper.info_ref.idnum
    fh.write(b"".join(lines) + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_pos)


_FORKED_SEAL = None  # the seal of ``_full_renders``' worker processes (forked: a key does not pickle)


def _render_full(args: tuple[dict, HolderInfo, IssueStamp | None], seal=None) -> bytes:
    data, holder, stamp = args
    data = _data_for(data, holder)
    if stamp is not None:
        data = {**data, "certificate_number": stamp.number, "revision": stamp.revision,
                "verification": {"code": stamp.code, "url": stamp.url}}
    return render_certificate_pdf(data, seal if seal is not None else _FORKED_SEAL)


BATCH_PROCESSES = 2
PARALLEL_FROM = 16  # holders; below this, starting processes costs more than it saves


def _full_renders(data: dict, holders: list[HolderInfo], stamps: list[IssueStamp] | None = None, seal=None):
    """Each holder rendered in full (holder-specific wording), in order, on up to 2 processes; each
    signed with ``seal`` when given."""
    import multiprocessing
    import os

    global _FORKED_SEAL
    jobs = [(data, h, stamps[i] if stamps else None) for i, h in enumerate(holders)]
    processes = min(BATCH_PROCESSES, os.cpu_count() or 1)
    if len(holders) < PARALLEL_FROM or processes < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for job_args in jobs:
            yield _render_full(job_args, seal)
        return
    # Import and compile in the parent, so the forked workers start warm.
    from xhtml2pdf import pisa  # noqa: F401

    get_env().get_template("pdf/certificate.html")
    get_env().get_template("pdf/poi.html")
    _FORKED_SEAL = seal
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            yield from pool.imap(_render_full, jobs, chunksize=4)
    finally:
        _FORKED_SEAL = None


def render_batch(data: dict, holders: list[HolderInfo], out_path: Path, *, mode: str,
                 progress: Callable[[int, int], None] | None = None, stamps: list[IssueStamp] | None = None,
                 sign: Callable[[bytes], bytes] | None = None, digests: list[str] | None = None,
                 seal=None) -> int:
    """One certificate per holder, streamed to ``out_path`` (``mode`` "zip" of PDFs, or one "merged" PDF).

    The common part is rendered once and each holder is stamped into it (a few hundred bytes each, no
    re-render, memory flat). When the wording names the holder (a WOS description), each holder's
    certificate is rendered in full instead, on two processes. Returns the number written.

    ``stamps`` (one per holder): each certificate's own number, revision, verification code and QR code,
    stamped in the same pass. ``seal`` (``signing.Seal``): each ZIP member signed as it is stamped.
    ``sign``: applied to each ZIP member, or once to the merged file. ``digests``:
    when given, the SHA-256 (hex) of each ZIP member (or of the merged file, once) is appended to it.
    """
    import hashlib

    mode = str(getattr(mode, "value", mode))
    if mode not in ("zip", "merged"):
        raise ValueError(f"unknown batch mode {mode!r}")
    if stamps is not None and len(stamps) != len(holders):
        raise ValueError("one stamp per holder")
    out_path = Path(out_path)
    total = len(holders)
    done = 0
    step = max(1, total // 50)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None and (done % step == 0 or done == total):
            progress(done, total)

    if progress is not None:
        progress(0, total)
    if not holders:
        if mode == "zip":
            with zipfile.ZipFile(out_path, "w"):
                pass
        else:
            out_path.write_bytes(render_certificate_pdf(data))
        return 0

    stamper = _prepare_batch(data, holders, numbered=bool(stamps))
    fast = stamper is not None
    used: set[str] = set()
    if mode == "zip":
        with zipfile.ZipFile(out_path, "w", allowZip64=True) as zf:
            if fast:
                pdfs = (stamper.stamp(h, stamps[i] if stamps else None, seal) for i, h in enumerate(holders))
            else:
                pdfs = _full_renders(data, holders, stamps, seal)
            for index, (holder, pdf) in enumerate(zip(holders, pdfs, strict=True), start=1):
                if sign is not None:
                    pdf = sign(pdf)
                if digests is not None:
                    digests.append(hashlib.sha256(pdf).hexdigest())
                write_zip_entry(zf, filename_for(holder, index, used), pdf)
                tick()
        return total
    if fast:
        with out_path.open("wb") as fh:
            _write_merged_fast(stamper, fh, holders, tick, stamps)
    else:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter()
        for pdf in _full_renders(data, holders, stamps):
            writer.append(PdfReader(io.BytesIO(pdf)))
            tick()
        with out_path.open("wb") as fh:
            writer.write(fh)
    if sign is not None:
        out_path.write_bytes(sign(out_path.read_bytes()))
    if digests is not None:
        digests.append(_file_sha256(out_path))
    return total


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def filename_for(holder: HolderInfo, index: int, used: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", holder.name).strip("-")[:60] or "holder"
    name = f"{index:04d}-{slug}.pdf"
    used.add(name)
    return name


def write_zip_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    # PDF streams are already compressed; storing is fast and costs little size.
    zf.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_STORED)
