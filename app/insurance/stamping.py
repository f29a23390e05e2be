"""Certificate stamping: byte-level incremental updates of a rendered certificate.

The per-certificate stamp (number, revision, verification code and QR code), the verification page of
an uploaded certificate, the holder box, and the signature field and dictionary written and signed in
place (``Stamper``, ``sign_file_in_place``). No re-render: a few hundred bytes per certificate.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from app.insurance.layout import (
    DESCRIPTION_SIZE,
    HOLDER_TEXT_TOP,
    HOLDER_TEXT_X,
    MARGIN,
    PAGE_H,
    PAGE_W,
    HolderInfo,
    _clean,
    _wrap,
    description_lines,
)

log = logging.getLogger(__name__)

# -- the per-certificate stamp: number, revision, verification code and QR code --------------------------

@dataclass(frozen=True)
class IssueStamp:
    """What differs between two issued certificates of one render: number, revision, verification."""

    number: str = ""
    revision: int = 0
    code: str = ""
    url: str = ""

    @classmethod
    def from_data(cls, data: dict) -> IssueStamp | None:
        ver = data.get("verification") or {}
        if not ver.get("code"):
            return None
        return cls(number=str(data.get("certificate_number") or ""), revision=int(data.get("revision") or 0),
                   code=str(ver["code"]), url=str(ver.get("url") or ""))

    @property
    def display_code(self) -> str:
        return format_code(self.code)


def format_code(code: str) -> str:
    """A verification code as printed: two groups of five, e.g. ``K7Q2M-9XD4H``."""
    code = str(code or "")
    return f"{code[:5]}-{code[5:]}" if len(code) == 10 else code


# The authorized representative box (bottom right): the QR code at its right edge, the words left of it.
QR_SIZE = 40.0
QR_X = PAGE_W - MARGIN - QR_SIZE - 4
QR_Y = MARGIN + 8.0
VERIFY_TEXT_X = QR_X - 112
VERIFY_TEXT_W = 108.0


_DARK_RUN = re.compile(rb"\x00+")


def qr_runs(url: str) -> tuple[int, list[tuple[int, int, int]]]:
    """The QR code of ``url``: (modules per side, [(row, first column, length) of each run of dark modules
    in a row]), drawn as one filled rectangle per run.

    Encoded by zxing-cpp (a maintained C++ library; ~0.5 ms a code, a seventh of a pure-Python encoder:
    mass generation draws one per holder), error correction level M; the tests decode it back.
    """
    import zxingcpp

    image = zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode, ec_level="M").to_image(
        scale=1, add_quiet_zones=False)
    rows, n = image.shape
    data = memoryview(image).tobytes()  # one byte a module: 0 dark, 255 light
    return n, [(r, m.start() - r * n, m.end() - m.start())
               for r in range(rows) for m in _DARK_RUN.finditer(data, r * n, (r + 1) * n)]


def _qr_ops(url: str, x: float, y: float, size: float) -> list[bytes]:
    """PDF operators filling the QR code of ``url`` into the square at (x, y) of side ``size``."""
    n, runs = qr_runs(url)
    cell = size / n
    return [b"%.3f %.3f %.3f %.3f re" % (x + start * cell, y + (n - 1 - r) * cell, length * cell, cell)
            for r, start, length in runs] + [b"f"]


def verification_content(stamp: IssueStamp, font_name: bytes = b"/CDHolder",
                         number_slots: tuple[tuple[float, float], ...] = ()) -> bytes:
    """PDF operators that draw the QR code of ``stamp.url`` (filled squares, one per dark module), the
    verification code and address beside it, and (``number_slots``: x, baseline y of the certificate
    number and the revision in the COVERAGES bar) the number and revision in white."""
    ops = [b"q 0 g"]
    if stamp.url:
        ops += _qr_ops(stamp.url, QR_X, QR_Y, QR_SIZE)
    ops += [b"BT", b"/CDHolderB 5.8 Tf", b"1 0 0 1 %.2f %.2f Tm" % (VERIFY_TEXT_X, QR_Y + QR_SIZE - 6),
            _pdf_string("VERIFY THIS CERTIFICATE") + b" Tj", font_name + b" 8.5 Tf",
            b"1 0 0 1 %.2f %.2f Tm" % (VERIFY_TEXT_X, QR_Y + QR_SIZE - 17), _pdf_string(stamp.display_code) + b" Tj",
            font_name + b" 5.2 Tf", b"6.2 TL", b"1 0 0 1 %.2f %.2f Tm" % (VERIFY_TEXT_X, QR_Y + QR_SIZE - 25)]
    for i, line in enumerate(_wrap(stamp.url, "Helvetica", 5.2, VERIFY_TEXT_W)[:3]):
        ops.append(_pdf_string(line) + (b" Tj" if i == 0 else b" '"))
    ops.append(b"ET")
    if number_slots:
        ops += [b"1 g BT", b"/CDHolderB 7 Tf"]
        for (x, y), text in zip(number_slots, (stamp.number, str(stamp.revision)), strict=False):
            ops.append(b"1 0 0 1 %.2f %.2f Tm " % (x, y) + _pdf_string(text) + b" Tj")
        ops.append(b"ET")
    ops.append(b"Q")
    return b"\n".join(ops) + b"\n"


def link_annotation(stamp: IssueStamp) -> bytes:
    """A link annotation over the QR code that opens the verify page."""
    uri = _pdf_string(stamp.url)
    return (b"<< /Type /Annot /Subtype /Link /Rect [%.2f %.2f %.2f %.2f] /Border [0 0 0] "
            % (QR_X, QR_Y, QR_X + QR_SIZE, QR_Y + QR_SIZE) + b"/A << /S /URI /URI " + uri + b" >> >>")


# -- the verification page of an uploaded certificate ----------------------------------------------------

VERIFY_PAGE_QR = 144.0  # points: 2 inches, easy to scan from a screen or from paper


def verification_page_content(stamp: IssueStamp, facts: list[tuple[str, str]], width: float,
                              height: float) -> tuple[bytes, tuple[float, float, float, float]]:
    """The operators of the page added at the end of an uploaded (already-issued) certificate: a title,
    what was recorded (``facts``: label, value), the verification code, the QR code of ``stamp.url`` and the
    address; fonts ``/CDHolder`` and ``/CDHolderB``. Returns the operators and the QR code's rectangle (for
    the link over it)."""
    left, top = 54.0, height - 72.0
    ops = [b"q 0 g BT", b"/CDHolderB 16 Tf", b"1 0 0 1 %.2f %.2f Tm" % (left, top),
           _pdf_string("Certificate verification") + b" Tj", b"/CDHolder 10 Tf", b"14 TL",
           b"1 0 0 1 %.2f %.2f Tm" % (left, top - 26)]
    intro = ("This page was added by CertDesk when the certificate on the previous page(s) was issued. "
             "The pages before it are unchanged. The whole file is digitally signed: any change to it breaks "
             "the signature.")
    for i, line in enumerate(_wrap(intro, "Helvetica", 10, width - 2 * left)):
        ops.append(_pdf_string(line) + (b" Tj" if i == 0 else b" '"))
    y = top - 26 - 14 * len(_wrap(intro, "Helvetica", 10, width - 2 * left)) - 16
    for label, value in [*facts, ("Verification code", stamp.display_code)]:
        ops += [b"/CDHolderB 10 Tf", b"1 0 0 1 %.2f %.2f Tm" % (left, y), _pdf_string(f"{label}:") + b" Tj",
                b"/CDHolder 10 Tf", b"1 0 0 1 %.2f %.2f Tm" % (left + 130, y)]
        for i, line in enumerate(_wrap(value, "Helvetica", 10, width - 2 * left - 130)[:4]):
            ops.append(_pdf_string(line) + (b" Tj" if i == 0 else b" '"))
        y -= 14 * max(1, min(4, len(_wrap(value, "Helvetica", 10, width - 2 * left - 130)))) + 4
    y -= 10
    ops += [b"/CDHolder 10 Tf", b"1 0 0 1 %.2f %.2f Tm" % (left, y),
            _pdf_string("Scan the QR code, or open this address, to see whether the certificate is current:")
            + b" Tj", b"/CDHolderB 10 Tf", b"1 0 0 1 %.2f %.2f Tm" % (left, y - 14), _pdf_string(stamp.url) + b" Tj",
            b"ET"]
    qr_x, qr_y = left, y - 44 - VERIFY_PAGE_QR  # 30 pt clear above it: the quiet zone of 4+ modules
    if stamp.url:
        ops += _qr_ops(stamp.url, qr_x, qr_y, VERIFY_PAGE_QR)
    ops.append(b"Q")
    return b"\n".join(ops) + b"\n", (qr_x, qr_y, qr_x + VERIFY_PAGE_QR, qr_y + VERIFY_PAGE_QR)


def append_verification_page(writer, stamp: IssueStamp, facts: list[tuple[str, str]]) -> None:
    """Add the verification page (``verification_page_content``) at the end of the document open in
    ``writer`` (a pyHanko ``IncrementalPdfFileWriter``), as big as its first page, with a link over the
    QR code. The existing pages are not touched."""
    from pyhanko.pdf_utils import generic

    first = writer.root["/Pages"]
    while "/Kids" in first:
        first = first["/Kids"][0].get_object()
    box = [float(v) for v in first.get("/MediaBox", [0, 0, PAGE_W, PAGE_H])]
    width, height = abs(box[2] - box[0]) or PAGE_W, abs(box[3] - box[1]) or PAGE_H
    if int(first.get("/Rotate", 0)) % 180:  # a landscape page shown turned: keep the reading size
        width, height = height, width
    ops, rect = verification_page_content(stamp, facts, width, height)

    def font(base: str):
        return generic.DictionaryObject({
            generic.pdf_name("/Type"): generic.pdf_name("/Font"), generic.pdf_name("/Subtype"): generic.pdf_name(
                "/Type1"), generic.pdf_name("/BaseFont"): generic.pdf_name(base),
            generic.pdf_name("/Encoding"): generic.pdf_name("/WinAnsiEncoding")})

    contents = generic.StreamObject(stream_data=ops)
    contents.compress()
    link = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Annot"), generic.pdf_name("/Subtype"): generic.pdf_name("/Link"),
        generic.pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in rect),
        generic.pdf_name("/Border"): generic.ArrayObject([generic.NumberObject(0)] * 3),
        generic.pdf_name("/A"): generic.DictionaryObject({
            generic.pdf_name("/S"): generic.pdf_name("/URI"), generic.pdf_name("/URI"): generic.TextStringObject(
                stamp.url)})})
    page = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject(generic.FloatObject(v) for v in (0, 0, width, height)),
        generic.pdf_name("/Contents"): writer.add_object(contents),
        generic.pdf_name("/Resources"): generic.DictionaryObject({generic.pdf_name("/Font"): generic.DictionaryObject({
            generic.pdf_name("/CDHolder"): font("/Helvetica"), generic.pdf_name("/CDHolderB"): font(
                "/Helvetica-Bold")})}),
        generic.pdf_name("/Annots"): generic.ArrayObject([writer.add_object(link)]),
    })
    writer.insert_page(page)


# -- stamping the holder (incremental PDF update) -----------------------------------------------------

def _pdf_string(text: str) -> bytes:
    raw = _clean(text).encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def holder_content(holder: HolderInfo, font_name: bytes = b"/CDHolder",
                   name_slots: tuple[tuple[float, float], ...] = ()) -> bytes:
    """PDF content operators that write the holder box text (the lines of ``HolderInfo.lines``), and the
    holder's name into the description lines kept for it (``name_slots``: x, baseline y of each)."""
    size, leading, lines = holder.fitted()
    y = PAGE_H - HOLDER_TEXT_TOP - size
    ops = [b"Q q BT", font_name + b" %.1f Tf" % size, b"%.2f TL" % leading,
           b"1 0 0 1 %.2f %.2f Tm" % (HOLDER_TEXT_X, y)]
    for i, line in enumerate(lines):
        ops.append(_pdf_string(line) + (b" Tj" if i == 0 else b" '"))
    ops.append(b"ET")
    if name_slots:
        ops += [b"BT", font_name + b" %.1f Tf" % DESCRIPTION_SIZE]
        for (x, y), line in zip(name_slots, description_lines(holder.name), strict=False):
            ops.append(b"1 0 0 1 %.2f %.2f Tm " % (x, y) + _pdf_string(line) + b" Tj")
        ops.append(b"ET")
    ops.append(b"Q")
    return b"\n".join(ops) + b"\n"


class Stamper:
    """Writes a holder into a rendered base certificate by appending an incremental update.

    The base PDF (from reportlab: classic xref table, no object streams) is kept as bytes; each holder
    adds a few hundred bytes: a content stream with the holder text, page 1 again with that stream and a
    Helvetica font added, a new xref section pointing back at the original one. Readers see one page 1
    with both. ``_write_merged_fast`` uses the same parts to write many pages into one file.
    """

    def __init__(self, base: bytes, name_slots: tuple[tuple[float, float], ...] = (),
                 number_slots: tuple[tuple[float, float], ...] = ()) -> None:
        from pypdf import PdfReader
        from pypdf.generic import ArrayObject, DictionaryObject, NameObject

        self.base = base
        reader = PdfReader(io.BytesIO(base))
        if reader.xref_objStm or reader.trailer.get("/Encrypt") is not None:  # pragma: no cover - reportlab output
            raise RuntimeError("unexpected PDF structure for stamping")
        self.size = int(reader.trailer["/Size"])
        self.root_ref = reader.trailer.raw_get("/Root")
        self.info_ref = reader.trailer.raw_get("/Info") if "/Info" in reader.trailer else None
        m = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", base)
        if not m:  # pragma: no cover
            raise RuntimeError("base PDF has no startxref")
        self.prev_xref = int(m.group(1))
        self.page_refs = [p.indirect_reference for p in reader.pages]
        self.pages_ref = reader.trailer["/Root"].raw_get("/Pages")
        self.page_dicts: list[bytes] = []
        for page in reader.pages:
            page_obj = DictionaryObject()
            for key, value in page.items():
                if key in ("/Parent",):
                    continue
                page_obj[NameObject(key)] = value
            self.page_dicts.append(page_obj)
        # Page 1: its contents as an array of references, and resources with our font added.
        first = reader.pages[0]
        contents = first.raw_get("/Contents")
        self.contents_refs = list(contents) if isinstance(contents, ArrayObject) else [contents]
        resources = first["/Resources"].get_object() if "/Resources" in first else DictionaryObject()
        new_resources = DictionaryObject({NameObject(k): v for k, v in resources.items()})
        fonts = resources.get("/Font")
        new_fonts = DictionaryObject({NameObject(k): v for k, v in (fonts.get_object().items() if fonts else [])})
        new_fonts[NameObject("/CDHolder")] = DictionaryObject({
            NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"), NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        })
        new_fonts[NameObject("/CDHolderB")] = DictionaryObject({
            NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica-Bold"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        })
        new_resources[NameObject("/Font")] = new_fonts
        self.first_resources = _serialize(new_resources)
        # Everything of page 1 but /Contents, /Resources, /Parent, serialised once.
        rest = DictionaryObject({NameObject(k): v for k, v in first.items()
                                 if k not in ("/Contents", "/Resources", "/Parent", "/Annots")})
        annots = first.raw_get("/Annots") if "/Annots" in first else None
        self.first_annots = b" ".join(_serialize(a) for a in (annots.get_object() if annots is not None else []))
        self.first_rest = _serialize(rest)[2:-2]  # without the << >>
        self.other_pages = [_serialize(DictionaryObject({NameObject(k): v for k, v in p.items()
                                                         if k not in ("/Parent",)}))[2:-2]
                            for p in list(reader.pages)[1:]]
        self.page_count = len(reader.pages)
        self.name_slots = tuple(name_slots)
        self.number_slots = tuple(number_slots)
        # The catalog again with the signature field's /AcroForm (a base with a form of its own is signed
        # by pyHanko instead: see ``can_seal``).
        catalog = reader.trailer["/Root"].get_object()
        self.can_seal = "/AcroForm" not in catalog
        self.catalog_rest = _serialize(DictionaryObject({NameObject(k): v for k, v in catalog.items()}))[2:-2]
        self._head = base if base.endswith(b"\n") else base + b"\n"
        self._head_hash = None

    def content(self, holder: HolderInfo, stamp: IssueStamp | None = None) -> bytes:
        ops = holder_content(holder, name_slots=self.name_slots)
        if stamp is not None:
            ops += verification_content(stamp, number_slots=self.number_slots)
        return ops

    def _first_page(self, parent: bytes, stream_refs: tuple[int, int], annot_ref: int | None = None,
                    *more_annots: int) -> bytes:
        contents = b" ".join([b"%d 0 R" % stream_refs[0]] + [b"%d 0 R" % r.idnum for r in self.contents_refs]
                             + [b"%d 0 R" % stream_refs[1]])
        annots = b" ".join(a for a in (self.first_annots, *(b"%d 0 R" % r for r in (annot_ref, *more_annots) if r))
                           if a)
        return (b"<<" + self.first_rest + b" /Parent " + parent + b" /Contents [" + contents + b"] /Resources "
                + self.first_resources + (b" /Annots [" + annots + b"]" if annots else b"") + b">>")

    def stamp(self, holder: HolderInfo, stamp: IssueStamp | None = None, seal=None) -> bytes:
        """The base certificate with ``holder`` written into the holder box (and ``stamp``: number, revision,
        verification code, QR code and its link), as one PDF file; with ``seal`` (``signing.Seal``) signed
        in the same incremental update."""
        out = io.BytesIO()
        self.write_stamped(out, holder, stamp, seal)
        return out.getvalue()

    def write_stamped(self, out, holder: HolderInfo, stamp: IssueStamp | None = None, seal=None) -> None:
        """Write the stamped certificate to ``out``. With ``seal``, the update also holds an invisible
        signature field (a widget on page 1, listed in the catalog's /AcroForm) and its signature
        dictionary, last, with a ``/Contents`` hole of ``seal.reserve`` bytes; the SHA-256 of every byte but
        the hole (the base's share hashed once per Stamper) goes to ``seal.cms`` and the container is
        written into the hole. The signature covers the whole file."""
        if seal is not None and not self.can_seal:  # pragma: no cover - our renders have no form
            raise RuntimeError("this certificate has a form of its own: sign it with signing.sign_pdf")
        head = self._head
        n = self.size
        next_num = n + 2
        annot = widget = sig = None
        if stamp is not None and stamp.url:
            annot, next_num = next_num, next_num + 1
        if seal is not None:
            widget, sig, next_num = next_num, next_num + 1, next_num + 2
        page_num = self.page_refs[0].idnum
        objects: list[tuple[int, bytes]] = [
            (n, _stream(b"q\n")),
            (n + 1, flate_stream(self.content(holder, stamp))),
            (page_num, self._first_page(b"%d 0 R" % self.pages_ref.idnum, (n, n + 1), annot, *(
                [widget] if widget else []))),
        ]
        if annot is not None:
            objects.append((annot, link_annotation(stamp)))
        if seal is not None:
            objects += [
                (self.root_ref.idnum, b"<<" + self.catalog_rest + b" /AcroForm << /Fields [%d 0 R] /SigFlags 3 >> >>"
                 % widget),
                (widget, signature_widget(seal, page_num, sig)),
                (sig, signature_dictionary(seal)),
            ]
        offsets: dict[int, int] = {}
        pos = len(head)
        chunks = []
        for num, body in objects:
            offsets[num] = pos
            chunk = b"%d 0 obj\n" % num + body + b"\nendobj\n"
            chunks.append(chunk)
            pos += len(chunk)
        xref = [b"xref\n0 1\n0000000000 65535 f \n"]
        for num in sorted(offsets):
            xref.append(b"%d 1\n%010d 00000 n \n" % (num, offsets[num]))
        trailer = b"trailer\n<< /Size %d /Root %d 0 R /Prev %d" % (next_num, self.root_ref.idnum, self.prev_xref)
        if self.info_ref is not None:
            trailer += b" /Info %d 0 R" % self.info_ref.idnum
        update = bytearray(b"".join(chunks) + b"".join(xref) + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % pos)
        if seal is not None:
            self._sign(update, len(head), seal)
        out.write(head)
        out.write(update)

    def _sign(self, update: bytearray, head_len: int, seal) -> None:
        """Fill in the ``/ByteRange`` and ``/Contents`` of the signature dictionary in ``update``."""
        import hashlib

        at = update.rindex(b" /ByteRange " + _BYTE_RANGE_HOLE) + len(b" /ByteRange ")
        hole = update.index(b"/Contents <", at) + len(b"/Contents ")  # the "<" of the hex string
        hole_end = hole + 2 * seal.reserve + 2                           # after its ">"
        total = head_len + len(update)
        byte_range = b"[0 %d %d %d]" % (head_len + hole, head_len + hole_end, total - head_len - hole_end)
        update[at:at + len(_BYTE_RANGE_HOLE)] = byte_range.ljust(len(_BYTE_RANGE_HOLE))
        if self._head_hash is None:
            self._head_hash = hashlib.sha256(self._head)
        digest = self._head_hash.copy()
        digest.update(memoryview(update)[:hole])
        digest.update(memoryview(update)[hole_end:])
        container = seal.cms(digest.digest()).hex().encode()
        if len(container) > 2 * seal.reserve:  # pragma: no cover - the reserve is measured with a real one
            raise RuntimeError("the signature does not fit the space kept for it")
        update[hole + 1:hole + 1 + len(container)] = container


_BYTE_RANGE_HOLE = b"[0 0 0 0]" + b" " * 36  # room for three 10-digit offsets


def signature_widget(seal, page_num: int, sig_num: int) -> bytes:
    """The invisible signature field of ``seal`` (field and widget in one, on page ``page_num``)."""
    return (b"<< /Type /Annot /Subtype /Widget /FT /Sig /T " + _pdf_string(seal.field_name)
            + b" /F 132 /Rect [0 0 0 0] /P %d 0 R /V %d 0 R >>" % (page_num, sig_num))


def signature_dictionary(seal) -> bytes:
    """The signature dictionary with its ``/ByteRange`` and ``/Contents`` still to fill in (fixed sizes)."""
    return (b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /M " + _pdf_string(seal.pdf_date)
            + b" /Reason " + _pdf_string(seal.reason) + b" /ByteRange " + _BYTE_RANGE_HOLE + b" /Contents <"
            + b"0" * (2 * seal.reserve) + b"> >>")


def sign_file_in_place(fh, seal, dictionary_at: int) -> None:
    """Sign a PDF already written to ``fh`` (opened for reading and writing) whose signature dictionary
    (``signature_dictionary``) starts at byte ``dictionary_at``: fill in its ``/ByteRange``, hash the two
    ranges reading the file back in blocks (memory stays flat, whatever its size), write the container."""
    import hashlib

    body = signature_dictionary(seal)
    at = dictionary_at + body.index(b" /ByteRange ") + len(b" /ByteRange ")
    hole = dictionary_at + body.index(b"/Contents <") + len(b"/Contents ")
    hole_end = hole + 2 * seal.reserve + 2
    fh.flush()
    total = fh.seek(0, io.SEEK_END)
    fh.seek(at)
    fh.write((b"[0 %d %d %d]" % (hole, hole_end, total - hole_end)).ljust(len(_BYTE_RANGE_HOLE)))
    fh.flush()
    digest = hashlib.sha256()
    for start, end in ((0, hole), (hole_end, total)):
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(left, 1 << 20))
            if not block:  # pragma: no cover - the file is as long as it said
                raise RuntimeError("the PDF ended early while signing")
            digest.update(block)
            left -= len(block)
    container = seal.cms(digest.digest()).hex().encode()
    if len(container) > 2 * seal.reserve:  # pragma: no cover - the reserve is measured with a real one
        raise RuntimeError("the signature does not fit the space kept for it")
    fh.seek(hole + 1)
    fh.write(container)
    fh.seek(0, io.SEEK_END)


def _serialize(obj) -> bytes:
    buf = io.BytesIO()
    obj.write_to_stream(buf)
    return buf.getvalue()


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def flate_stream(data: bytes) -> bytes:
    """A compressed content stream (the per-holder text and QR code: ~7 KB of operators -> ~1.3 KB)."""
    import zlib

    packed = zlib.compress(data, 1)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
