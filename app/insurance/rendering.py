"""Certificate rendering: certificate data -> HTML (``templates/pdf/``) -> PDF with xhtml2pdf.

One certificate = the common part (everything except the holder box), rendered here once, plus the
holder's name and address written into a box at a fixed position on page 1 by ``stamping``. Single
certificates and mass generation (``batching``) use the same two steps, so they look identical.

Rendering is confined: autoescaped templates, a ``link_callback`` that maps only our own
``static/pdf/`` files, and an xhtml2pdf resource policy that refuses every URL and every local file
outside ``static/pdf/``. Nothing here needs a Flask app context (the benchmark and worker processes
call it directly).
"""

from __future__ import annotations

import io
import logging
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from app.enums import RequestType
from app.insurance.layout import (
    CONTINUED,
    DESCRIPTION_MAX_LINES,
    DESCRIPTION_MIN_LINES,
    GEOMETRY,
    REMARKS_LINES_PER_PAGE,
    USUAL_ROW_LINES,
    HolderInfo,
    _wrap,
    description_lines,
)
from app.insurance.stamping import IssueStamp, Stamper

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "templates"
STATIC_PDF_DIR = ROOT / "static" / "pdf"

# xhtml2pdf warns on every render about CSS it does not support; those warnings are about our own
# fixed template and say nothing new after the first time. Real failures are ERROR and still logged,
# and a render with errors raises (see html_to_pdf).
for _name in ("xhtml2pdf", "xhtml2pdf.tags", "xhtml2pdf.parser", "xhtml2pdf.context", "xhtml2pdf.css",
              "xhtml2pdf.w3c", "xhtml2pdf.files"):
    logging.getLogger(_name).setLevel(logging.ERROR)


# -- rendering ----------------------------------------------------------------------------------------

_env: Environment | None = None


def _fmt_date(value: str) -> str:
    if not value:
        return ""
    d = date.fromisoformat(value)
    return f"{d:%m/%d/%Y}"


def _fmt_money(value) -> str:
    return f"${int(value):,}"


def _fit(value: Any, width: float, size: float = 8.0, bold: bool = False) -> Markup:
    """Escaped text broken into lines that fit ``width`` points (long policy numbers, e-mail addresses):
    xhtml2pdf never breaks a word, so an unbroken string would run into the next cell."""
    font = "Helvetica-Bold" if bold else "Helvetica"
    return Markup("<br>").join(escape(line) for line in _wrap(str(value or ""), font, size, width))


def get_env() -> Environment:
    global _env
    if _env is None:
        env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(default=True),
                          trim_blocks=True, lstrip_blocks=True)
        env.filters["usdate"] = _fmt_date
        env.filters["usd"] = _fmt_money
        env.filters["fit"] = _fit
        env.globals["inline_image"] = inline_image
        _env = env
    return _env


_INLINE: dict[str, str] = {}


def inline_image(name: str) -> str:
    """A ``static/pdf/<name>.png`` as a data: URI, read once (17 check boxes a page: reading each from
    disk through xhtml2pdf's file layer costs about a fifth of the render)."""
    if name not in _INLINE:
        import base64

        path = (STATIC_PDF_DIR / f"{name}.png").resolve()
        if not path.is_relative_to(STATIC_PDF_DIR):
            raise ValueError(name)
        _INLINE[name] = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    return _INLINE[name]


def link_callback(uri: str, rel: str | None = None) -> str:
    """Map ``static/pdf/<file>`` to that file, and pass our own inlined images (``inline_image``);
    anything else becomes a file that is not there.

    Our templates reference nothing else; a value slipped into the HTML cannot make the renderer fetch a
    URL or read a local file. (xhtml2pdf keeps the original URI when the callback returns nothing, so
    we return a harmless missing path rather than ``None``; the resource policy below refuses too.)
    """
    name = str(uri or "")
    if name.startswith("data:") and name in _INLINE.values():
        return name
    if name.startswith("static/pdf/") and ".." not in name and "\\" not in name:
        candidate = (STATIC_PDF_DIR / name[len("static/pdf/"):]).resolve()
        if candidate.is_relative_to(STATIC_PDF_DIR) and candidate.is_file():
            return str(candidate)
    log.warning("certificate PDF: refused resource %r", name[:120])
    return str(STATIC_PDF_DIR / "__refused__")


def _policy():
    from xhtml2pdf.config.resources import ResourceAccessPolicy

    return ResourceAccessPolicy.server(base_dir=STATIC_PDF_DIR, allow_remote=False, allow_private_networks=False)


def _row_lines(row: dict) -> int:
    checks = len(row.get("checks") or []) + 1 + (2 if row.get("line") == "workers_comp" else 0)
    if row.get("line") == "other" and row.get("detail"):
        checks += 1 + len(str(row["detail"])) // 40
    limits = sum(1 + len(str(lim.get("label", ""))) // 36 for lim in row.get("limits") or [])
    return max(checks, limits, 2)


def description_capacity(data: dict) -> int:
    """How many description lines fit on page 1 above the fixed bottom boxes, given the coverage rows."""
    if data.get("kind") == RequestType.POI.value:
        rows = [r for r in data.get("coverages") or [] if r.get("present")]
        extra = sum(max(_row_lines({**r, "checks": []}), 2) for r in rows) - 12
        return max(DESCRIPTION_MIN_LINES, DESCRIPTION_MAX_LINES + 4 - max(0, extra))
    extra = sum(max(0, _row_lines(r) - USUAL_ROW_LINES.get(r.get("line"), 2)) for r in data.get("coverages") or [])
    return max(DESCRIPTION_MIN_LINES, DESCRIPTION_MAX_LINES - extra)


def _description_parts(lines: list[str], capacity: int = DESCRIPTION_MAX_LINES) -> tuple[list[str], list[str]]:
    """(lines in the box on page 1, lines continued on the additional remarks page). Never shrinks the text."""
    if len(lines) <= capacity:
        return lines, []
    first = lines[:capacity - 1] + [CONTINUED]
    return first, lines[capacity - 1:]


def render_html(data: dict, lines: list[str] | None = None) -> str:
    """The HTML of the common part (holder box left empty for the stamp); ``lines``: the description's
    lines when the caller wrapped them already."""
    template = "pdf/poi.html" if data.get("kind") == RequestType.POI.value else "pdf/certificate.html"
    capacity = description_capacity(data)
    if lines is None:
        lines = description_lines(data.get("description", ""))
    first, rest = _description_parts(lines, capacity)
    remarks_pages = [rest[i:i + REMARKS_LINES_PER_PAGE] for i in range(0, len(rest), REMARKS_LINES_PER_PAGE)]
    insurers = list(data.get("insurers") or [])
    letters = {i["letter"] for i in insurers}
    insurers += [{"letter": letter, "name": "", "naic": ""} for letter in "ABCDEF" if letter not in letters]
    insurers.sort(key=lambda i: i["letter"])
    return get_env().get_template(template).render(
        d=data, g=GEOMETRY, description_lines=first, remarks_lines=rest, remarks_pages=remarks_pages,
        insurers=insurers,
        kind=RequestType(data.get("kind", "coi")), kind_label=RequestType(data.get("kind", "coi")).label,
        max_desc_lines=capacity,
    )


def html_to_pdf(html: str) -> bytes:
    from xhtml2pdf import pisa

    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, link_callback=link_callback, resource_policy=_policy(),
                            encoding="utf-8")
    if result.err:
        raise RuntimeError(f"certificate PDF rendering failed ({result.err} error(s))")
    return out.getvalue()


def render_base_pdf(data: dict) -> bytes:
    """The certificate without the holder text (the part mass generation shares between holders)."""
    return html_to_pdf(render_html(data))


def render_certificate_pdf(data: dict, seal=None) -> bytes:
    """COI / COI-with-WOS layout; the simpler POI layout when ``data["kind"] == "poi"``. When ``data`` has a
    ``verification`` ({"code", "url"}), the verification code and its QR code are stamped too; with ``seal``
    (``signing.Seal``) the file is signed in the same update."""
    base = Stamper(render_base_pdf(data))
    return base.stamp(HolderInfo.from_dict(data.get("holder") or {}), IssueStamp.from_data(data), seal)
