"""Streaming writers for mass generation: one merged PDF and one ZIP of PDFs, written holder by holder
straight to disk, with memory that does not grow with the number of holders.

Both keep what they must repeat at the end (the PDF's cross-reference table and page list, the ZIP's
central directory) in spool files next to the output instead of in lists, and copy them in when the
file is closed. Python's ``zipfile`` keeps a ``ZipInfo`` per member in memory (hundreds of bytes each,
~70 MB for 200,000 members), and pypdf's writer keeps every page object, hence these two small writers.

The merged PDF reuses the stamping of ``app.insurance.stamping``: the certificate of each group of holders
(one per combination of endorsement flags) is rendered once; the bases are combined into one file,
then each holder adds a page that shares its base page's drawing and fonts plus a small content
stream with the holder's text (a few hundred bytes a page). The combined PDF is signed in place when it
is closed (``MergedPdfWriter(seal=...)``): before, pyHanko re-read the whole file into memory to sign it.
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

# -- merged PDF ------------------------------------------------------------------------------------------


class BasePage:
    """One group's certificate inside the combined base file: what a holder's copy of it repeats."""

    def __init__(self, reader, first: int, count: int, name_slots: tuple = (), number_slots: tuple = ()) -> None:
        from pypdf.generic import ArrayObject, DictionaryObject, NameObject

        from app.insurance.stamping import _serialize

        pages = list(reader.pages)[first:first + count]
        page = pages[0]
        contents = page.raw_get("/Contents")
        self.contents_refs = [c.idnum for c in (contents if isinstance(contents, ArrayObject) else [contents])]
        resources = page["/Resources"].get_object() if "/Resources" in page else DictionaryObject()
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
        self.resources = _serialize(new_resources)
        self.rest = _serialize(DictionaryObject({NameObject(k): v for k, v in page.items()
                                                 if k not in ("/Contents", "/Resources", "/Parent")}))[2:-2]
        self.other_pages = [_serialize(DictionaryObject({NameObject(k): v for k, v in p.items()
                                                         if k != "/Parent"}))[2:-2] for p in pages[1:]]
        self.name_slots = tuple(name_slots)
        self.number_slots = tuple(number_slots)

    def content(self, holder, stamp=None) -> bytes:
        """The holder's text, and (``stamp``) its certificate number, revision, verification code and QR code."""
        from app.insurance.stamping import holder_content, verification_content

        ops = holder_content(holder, name_slots=self.name_slots)
        if stamp is not None:
            ops += verification_content(stamp, number_slots=self.number_slots)
        return ops

    def first_page(self, parent: bytes, q_ref: int, text_ref: int, annot_ref: int | None = None,
                   widget_ref: int | None = None) -> bytes:
        refs = [q_ref, *self.contents_refs, text_ref]
        annots = [b"%d 0 R" % r for r in (annot_ref, widget_ref) if r]
        annots = b" /Annots [" + b" ".join(annots) + b"]" if annots else b""
        return (b"<<" + self.rest + b" /Parent " + parent + b" /Contents [" + b" ".join(b"%d 0 R" % r for r in refs)
                + b"] /Resources " + self.resources + annots + b">>")


def combine_bases(bases: list[tuple]) -> tuple[bytes, list[BasePage]]:
    """One PDF holding every group's base certificate (``(pdf bytes, name slots[, number slots])`` each),
    and a ``BasePage`` per group pointing into it. One group: its file as it is."""
    from pypdf import PdfReader, PdfWriter

    if len(bases) == 1:
        combined = bases[0][0]
    else:
        writer = PdfWriter()
        for pdf, *_slots in bases:
            writer.append(PdfReader(io.BytesIO(pdf)))
        out = io.BytesIO()
        writer.write(out)
        combined = out.getvalue()
    reader = PdfReader(io.BytesIO(combined))
    if reader.xref_objStm or reader.trailer.get("/Encrypt") is not None:  # pragma: no cover - our writers
        raise RuntimeError("unexpected PDF structure for stamping")
    views, first = [], 0
    for pdf, slots, *numbers in bases:
        count = len(PdfReader(io.BytesIO(pdf)).pages)
        views.append(BasePage(reader, first, count, slots, numbers[0] if numbers else ()))
        first += count
    return combined, views


class MergedPdfWriter:
    """Writes the combined base once, then per holder a content stream and its pages; ``close`` adds the
    page tree, the catalog and the cross-reference section as an incremental update of the base.

    With ``seal`` (``signing.Seal``; ``fh`` opened for reading too) the same update carries the file's
    signature: its field on the first holder's page, its dictionary written last, and ``close`` signs
    the finished file in place, reading it back in blocks (no second copy in memory, however many holders)."""

    def __init__(self, fh: BinaryIO, base: bytes, spool_dir: Path, seal=None) -> None:
        import re

        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(base))
        self._catalog = reader.trailer["/Root"].get_object()
        self._size = int(reader.trailer["/Size"])
        self._info = reader.trailer.raw_get("/Info").idnum if "/Info" in reader.trailer else None
        match = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", base)
        if not match:  # pragma: no cover - our writers always end so
            raise RuntimeError("base PDF has no startxref")
        self._prev_xref = int(match.group(1))
        self.fh = fh
        fh.write(base)
        self.pos = len(base)
        if not base.endswith(b"\n"):
            fh.write(b"\n")
            self.pos += 1
        self.pages_num = self._size  # reserved: the page tree is written last, its number comes first
        self.next_num = self._size + 1
        self.seal = seal
        if seal is not None:  # reserved too: the signature field and its dictionary, written at the end
            if "/AcroForm" in self._catalog:  # pragma: no cover - our renders have no form
                raise RuntimeError("the base certificate has a form of its own")
            self.widget_num, self.sig_num = self._size + 1, self._size + 2
            self.next_num = self._size + 3
        self._first_page_num: int | None = None
        self._xref = (spool_dir / "xref.spool").open("w+b")  # 20-byte entries from pages_num + 1 on
        self._kids = (spool_dir / "kids.spool").open("w+b")
        self.page_count = 0
        self._parent = b"%d 0 R" % self.pages_num
        self._q = self._put(b"<< /Length 2 >>\nstream\nq\n\nendstream")

    def _put(self, body: bytes) -> int:
        num = self.next_num
        chunk = b"%d 0 obj\n" % num + body + b"\nendobj\n"
        self._xref.write(b"%010d 00000 n \n" % self.pos)
        self.fh.write(chunk)
        self.pos += len(chunk)
        self.next_num += 1
        return num

    def _kid(self, num: int) -> None:
        self._kids.write(b"%d 0 R " % num)
        self.page_count += 1

    def add(self, page: BasePage, holder, stamp=None) -> None:
        """One holder's certificate: its group's pages, the first one with the holder's text on top (and
        ``stamp``: its number, revision, verification code, QR code and the link over it)."""
        from app.insurance.stamping import flate_stream, link_annotation

        text = self._put(flate_stream(page.content(holder, stamp)))
        annot = self._put(link_annotation(stamp)) if stamp is not None and stamp.url else None
        widget = self.widget_num if self.seal is not None and self._first_page_num is None else None
        num = self._put(page.first_page(self._parent, self._q, text, annot, widget))
        if self._first_page_num is None:
            self._first_page_num = num
        self._kid(num)
        for rest in page.other_pages:
            self._kid(self._put(b"<<" + rest + b" /Parent " + self._parent + b">>"))

    def close(self) -> None:
        from pypdf.generic import DictionaryObject, NameObject

        from app.insurance.stamping import _serialize

        pages_at = self.pos
        self.fh.write(b"%d 0 obj\n<< /Type /Pages /Count %d /Kids [" % (self.pages_num, self.page_count))
        self._kids.seek(0)
        shutil.copyfileobj(self._kids, self.fh)
        tail = b"] >>\nendobj\n"
        self.fh.write(tail)
        self.pos = self.fh.tell()
        catalog = DictionaryObject({NameObject(k): v for k, v in self._catalog.items() if k != "/Pages"})
        form = b" /AcroForm << /Fields [%d 0 R] /SigFlags 3 >>" % self.widget_num if self.seal is not None else b""
        catalog_num = self._put(_serialize(catalog)[:-2] + b" /Pages %d 0 R" % self.pages_num + form + b" >>")
        reserved = [pages_at]
        if self.seal is not None:
            from app.insurance.stamping import signature_dictionary, signature_widget

            for num, body in ((self.widget_num, signature_widget(self.seal, self._first_page_num, self.sig_num)),
                              (self.sig_num, signature_dictionary(self.seal))):
                reserved.append(self.pos)
                chunk = b"%d 0 obj\n" % num + body + b"\nendobj\n"
                self.fh.write(chunk)
                self.pos += len(chunk)
        xref_at = self.pos
        self.fh.write(b"xref\n0 1\n0000000000 65535 f \n%d %d\n" % (self.pages_num, len(reserved))
                      + b"".join(b"%010d 00000 n \n" % at for at in reserved)
                      + b"%d %d\n" % (self.pages_num + len(reserved), self.next_num - self.pages_num - len(reserved)))
        self._xref.seek(0)
        shutil.copyfileobj(self._xref, self.fh)
        trailer = b"trailer\n<< /Size %d /Root %d 0 R /Prev %d" % (self.next_num, catalog_num, self._prev_xref)
        if self._info is not None:
            trailer += b" /Info %d 0 R" % self._info
        self.fh.write(trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at)
        self._xref.close()
        self._kids.close()
        if self.seal is not None:
            from app.insurance.stamping import sign_file_in_place

            sign_file_in_place(self.fh, self.seal, reserved[-1] + len(b"%d 0 obj\n" % self.sig_num))


# -- ZIP -------------------------------------------------------------------------------------------------

_DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1  # 2000-01-01, as pdf.write_zip_entry dates its members
_UTF8 = 0x0800
_U32 = 0xFFFFFFFF


class ZipStreamWriter:
    """A ZIP of stored (uncompressed: PDF streams are compressed already) members, written one at a
    time; ZIP64 records are added when the archive needs them (more than 65,535 members or 4 GB)."""

    def __init__(self, fh: BinaryIO, spool_dir: Path) -> None:
        self.fh = fh
        self.pos = fh.tell()
        self.count = 0
        self._central = (spool_dir / "central.spool").open("w+b")

    def add(self, name: str, data: bytes) -> None:
        raw = name.encode("utf-8")
        crc = zlib.crc32(data)
        offset = self.pos
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, _UTF8, 0, 0, _DOS_DATE, crc, len(data), len(data),
                             len(raw), 0)
        self.fh.write(header + raw)
        self.fh.write(data)
        self.pos += len(header) + len(raw) + len(data)
        extra = b""
        if offset >= _U32:
            extra = struct.pack("<HHQ", 0x0001, 8, offset)
        self._central.write(struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45 if extra else 20, _UTF8, 0, 0, _DOS_DATE, crc, len(data),
            len(data), len(raw), len(extra), 0, 0, 0, 0, _U32 if extra else offset) + raw + extra)
        self.count += 1

    def close(self) -> None:
        start = self.pos
        self._central.seek(0)
        shutil.copyfileobj(self._central, self.fh)
        size = self._central.tell()
        self._central.close()
        end = start + size
        if self.count >= 0xFFFF or start >= _U32 or size >= _U32:
            self.fh.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, self.count, self.count, size,
                                      start))
            self.fh.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
        self.fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(self.count, 0xFFFF), min(self.count, 0xFFFF),
                                  min(size, _U32), min(start, _U32), 0))
