"""Certificate page geometry and the certificate holder.

The page is Letter, in points. The templates read the geometry through ``GEOMETRY`` so that the box drawn
by xhtml2pdf (``rendering``) and the holder text stamped into it (``stamping``) agree; ``HolderInfo`` is the
holder printed in that box, wrapped to fit it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reportlab.pdfbase.pdfmetrics import stringWidth

if TYPE_CHECKING:
    from app.models import CertificateRequest, Holder


# -- page geometry (points; Letter) ---------------------------------------------------------------
# The templates read these through ``geometry`` so that the box drawn by xhtml2pdf and the text
# stamped into it by _holder_stream agree.

PAGE_W, PAGE_H = 612.0, 792.0
MARGIN = 30.0
FOOTER_H = 118.0
FOOTER_TOP = PAGE_H - MARGIN - FOOTER_H  # distance from the top of the page
HOLDER_W = 276.0
HOLDER_FONT = "Helvetica"
HOLDER_SIZE = 9.0
HOLDER_LEADING = 10.6
HOLDER_MAX_LINES = 8             # at the usual size; longer holder text is set smaller, never cut
HOLDER_SIZES = (9.0, 8.0, 7.0, 6.0, 5.0)
HOLDER_NAME_CHARS = 50           # DESIGN: holder name lines of about 50 characters
HOLDER_TEXT_X = MARGIN + 8
HOLDER_TEXT_TOP = FOOTER_TOP + 17  # first line's top, from the top of the page
HOLDER_TEXT_W = HOLDER_W - 20

DESCRIPTION_FONT = "Helvetica"
DESCRIPTION_SIZE = 7.5
DESCRIPTION_W = PAGE_W - 2 * MARGIN - 12
DESCRIPTION_MAX_LINES = 14      # with the usual coverage rows; fewer when the rows are taller
DESCRIPTION_MIN_LINES = 4
# Text lines each coverage row takes in the common case; taller rows take lines from the description box.
USUAL_ROW_LINES = {"general_liability": 6, "automobile": 5, "umbrella": 5, "workers_comp": 6, "other": 2}
CONTINUED = "(Continued on the additional remarks page.)"
# Description lines one additional remarks page holds (7.5 pt at 1.25 leading in a 718 pt frame, less the
# header); longer text continues on as many further remarks pages as it needs.
REMARKS_LINES_PER_PAGE = 66

GEOMETRY = {
    "page_w": PAGE_W, "page_h": PAGE_H, "margin": MARGIN, "footer_h": FOOTER_H, "footer_top": FOOTER_TOP,
    "content_h": FOOTER_TOP - MARGIN - 6, "holder_w": HOLDER_W, "content_w": PAGE_W - 2 * MARGIN,
}


# -- holder ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HolderInfo:
    name: str
    address: str = ""
    city: str = ""
    state: str = ""
    zip_code: str = ""
    email: str = ""

    @classmethod
    def from_request(cls, req: CertificateRequest) -> HolderInfo:
        return cls(name=req.holder_name or "", address=req.holder_address or "", city=req.holder_city or "",
                   state=req.holder_state or "", zip_code=req.holder_zip or "", email=req.holder_email or "")

    @classmethod
    def from_holder(cls, holder: Holder) -> HolderInfo:
        return cls(name=holder.name or "", address=holder.address or "", city=holder.city or "",
                   state=holder.state or "", zip_code=holder.zip_code or "", email=holder.email or "")

    @classmethod
    def from_dict(cls, values: dict) -> HolderInfo:
        return cls(**{k: str(values.get(k) or "") for k in ("name", "address", "city", "state", "zip_code",
                                                             "email")})

    @property
    def city_line(self) -> str:
        tail = " ".join(p for p in (self.state.strip(), self.zip_code.strip()) if p)
        return ", ".join(p for p in (self.city.strip(), tail) if p)

    def lines(self, size: float = HOLDER_SIZE) -> list[str]:
        """The lines printed in the holder box: name (wrapped at ~50 characters), address, city line."""
        out = _wrap(self.name.strip(), HOLDER_FONT, size, HOLDER_TEXT_W, chars=HOLDER_NAME_CHARS)
        for part in (self.address.strip(), self.city_line):
            if part:
                out.extend(_wrap(part, HOLDER_FONT, size, HOLDER_TEXT_W))
        return out

    def fitted(self) -> tuple[float, float, list[str]]:
        """(font size, leading, lines) for the holder box: the usual 9 pt when the lines fit, else the
        largest smaller size at which every line fits (a holder's text is never cut)."""
        height = HOLDER_MAX_LINES * HOLDER_LEADING
        for size in HOLDER_SIZES:
            lines = self.lines(size)
            leading = size * HOLDER_LEADING / HOLDER_SIZE
            if len(lines) * leading <= height:
                return size, leading, lines
        size = HOLDER_SIZES[-1]
        lines = self.lines(size)
        return size, height / max(len(lines), 1), lines


def _clean(text: str) -> str:
    # Control characters have no place on a certificate (and would break the PDF text operators).
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text or "")


def _wrap(text: str, font: str, size: float, width: float, chars: int | None = None) -> list[str]:
    """Word-wrap by measured width (and at most ``chars`` characters a line); never drops text."""
    text = _clean(text)
    out: list[str] = []
    for paragraph in text.split("\n"):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        pieces = textwrap.wrap(paragraph, chars, break_long_words=True) if chars else [paragraph]
        for piece in pieces:
            line = ""
            for word in piece.split(" "):
                candidate = f"{line} {word}" if line else word
                if stringWidth(candidate, font, size) <= width:
                    line = candidate
                    continue
                if line:
                    out.append(line)
                line = word
                while stringWidth(line, font, size) > width:  # one very long "word"
                    cut = len(line)
                    while cut > 1 and stringWidth(line[:cut], font, size) > width:
                        cut -= 1
                    out.append(line[:cut])
                    line = line[cut:]
            if line:
                out.append(line)
    return out


def description_lines(description: str) -> list[str]:
    return _wrap(description, DESCRIPTION_FONT, DESCRIPTION_SIZE, DESCRIPTION_W)
