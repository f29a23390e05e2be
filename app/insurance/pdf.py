"""The certificate document: data assembly, HTML -> PDF rendering, and the fast mass-generation path.

One certificate = the common part (everything except the holder box), rendered from
``templates/pdf/certificate.html`` (or ``poi.html``) with xhtml2pdf, plus the holder's name and address
written into a box at a fixed position on page 1 (``GEOMETRY``, ``HOLDER_*``). Single certificates and mass
generation use the same two steps, so they look identical; mass generation renders the common part
once and only stamps each holder (``render_batch``).

Rendering is confined: autoescaped templates, a ``link_callback`` that maps only our own
``static/pdf/`` files, and an xhtml2pdf resource policy that refuses every URL and every local file
outside ``static/pdf/``. Nothing here needs a Flask app context (the benchmark and worker processes
call it directly).
"""

from __future__ import annotations

import io
import logging
import re
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from reportlab.pdfbase.pdfmetrics import stringWidth

from app.enums import CoverageLine, RequestType

if TYPE_CHECKING:
    from app.models import CertificateRequest, Customer, Holder

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "templates"
STATIC_PDF_DIR = ROOT / "static" / "pdf"

# xhtml2pdf warns on every render about CSS it does not support; those warnings are about our own
# fixed template and say nothing new after the first time. Real failures are ERROR and still logged,
# and a render with errors raises (see _html_to_pdf).
for _name in ("xhtml2pdf", "xhtml2pdf.tags", "xhtml2pdf.parser", "xhtml2pdf.context", "xhtml2pdf.css",
              "xhtml2pdf.w3c", "xhtml2pdf.files"):
    logging.getLogger(_name).setLevel(logging.ERROR)


class CertificateDataError(Exception):
    """The certificate cannot be produced from what is on file (e.g. no policy in force)."""


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


# -- data --------------------------------------------------------------------------------------------

LINE_ORDER = [CoverageLine.GENERAL_LIABILITY, CoverageLine.AUTOMOBILE, CoverageLine.UMBRELLA,
              CoverageLine.WORKERS_COMP, CoverageLine.OTHER]

LINE_TITLES = {
    CoverageLine.GENERAL_LIABILITY: "Commercial general liability",
    CoverageLine.AUTOMOBILE: "Automobile liability",
    CoverageLine.UMBRELLA: "Umbrella / excess liability",
    CoverageLine.WORKERS_COMP: "Workers' compensation and employers' liability",
    CoverageLine.OTHER: "Other",
}

# Limit key -> printed label, in print order. Keys on file that are not listed print after these.
LIMIT_LABELS: dict[CoverageLine, list[tuple[str, str]]] = {
    CoverageLine.GENERAL_LIABILITY: [
        ("each_occurrence", "Each occurrence"),
        ("damage_to_rented_premises", "Damage to rented premises (ea occurrence)"),
        ("medical_expense", "Med exp (any one person)"),
        ("personal_adv_injury", "Personal & adv injury"),
        ("general_aggregate", "General aggregate"),
        ("products_completed_ops", "Products - comp/op agg"),
    ],
    CoverageLine.AUTOMOBILE: [
        ("combined_single_limit", "Combined single limit (ea accident)"),
        ("bodily_injury_per_person", "Bodily injury (per person)"),
        ("bodily_injury_per_accident", "Bodily injury (per accident)"),
        ("property_damage", "Property damage (per accident)"),
    ],
    CoverageLine.UMBRELLA: [
        ("each_occurrence", "Each occurrence"),
        ("aggregate", "Aggregate"),
        ("retention", "Retention"),
    ],
    CoverageLine.WORKERS_COMP: [
        ("el_each_accident", "E.L. each accident"),
        ("el_disease_each_employee", "E.L. disease - ea employee"),
        ("el_disease_policy_limit", "E.L. disease - policy limit"),
    ],
    CoverageLine.OTHER: [],
}

# The check boxes printed in the "type of insurance" cell: (key, label, default when the policy has no
# coverage boxes on file). With boxes on file (``Policy.coverage``), ``_checked`` reads them.
CHECKS: dict[CoverageLine, list[tuple[str, str, bool]]] = {
    CoverageLine.GENERAL_LIABILITY: [("cgl", "Commercial general liability", True), ("claims_made", "Claims-made",
                                     False), ("occur", "Occur", True), ("agg_basis", "Gen'l aggregate applies per "
                                                                        "policy", True)],
    CoverageLine.AUTOMOBILE: [("any_auto", "Any auto", True), ("owned", "Owned autos only", False),
                              ("scheduled", "Scheduled autos", False), ("hired", "Hired autos", False),
                              ("non_owned", "Non-owned autos", False)],
    CoverageLine.UMBRELLA: [("umbrella", "Umbrella liab", True), ("excess", "Excess liab", False),
                            ("occur", "Occur", True), ("claims_made", "Claims-made", False)],
    CoverageLine.WORKERS_COMP: [("per_statute", "Per statute", True), ("other", "Other", False)],
    CoverageLine.OTHER: [],
}


def _check_label(key: str, label: str, coverage: dict) -> str:
    """The general aggregate's basis prints as the word on file: policy, project or location."""
    if key == "agg_basis":
        return f"Gen'l aggregate applies per {coverage.get('aggregate_basis') or 'policy'}"
    return label


def _checked(line: CoverageLine, key: str, coverage: dict, default: bool) -> bool:
    """Is box ``key`` ticked, from the policy's coverage boxes on file (``default`` when none are)."""
    if not coverage:
        return default
    form_claims = coverage.get("form") == "claims_made"
    if line is CoverageLine.GENERAL_LIABILITY:
        return {"cgl": True, "claims_made": form_claims, "occur": not form_claims,
                "agg_basis": True}.get(key, default)
    if line is CoverageLine.UMBRELLA:
        excess = coverage.get("kind") == "excess"
        return {"umbrella": not excess, "excess": excess, "occur": not form_claims,
                "claims_made": form_claims}.get(key, default)
    if line is CoverageLine.WORKERS_COMP:
        return {"per_statute": bool(coverage.get("per_statute", True)), "other": False}.get(key, default)
    return bool(coverage.get(key, False))

# The holder's name is a paragraph of its own, so mass generation can write each holder's name into the
# lines kept for it instead of rendering every certificate again (see _prepare_batch).
WOS_WORDING = ("Waiver of subrogation applies with respect to workers' compensation, where required by written "
               "contract, in favor of the certificate holder:\n{holder}")

MAX_INSURERS = 6


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def _amount(value: Any) -> int:
    if isinstance(value, bool):
        raise CertificateDataError(f"{value!r} is not an amount.")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(round(value))
    text = re.sub(r"[\s$,]", "", str(value or ""))
    if not re.fullmatch(r"\d{1,12}", text):
        raise CertificateDataError(f"“{str(value)[:40]}” is not an amount in whole dollars.")
    return int(text)


def _iso(value: Any) -> str:
    """A date typed by staff (YYYY-MM-DD or MM/DD/YYYY) as ISO text."""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip()
    us = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text).isoformat()
        if us:
            return date(int(us[3]), int(us[1]), int(us[2])).isoformat()
    except ValueError:
        pass
    raise CertificateDataError(f"“{text[:40]}” is not a date (use YYYY-MM-DD or MM/DD/YYYY).")


def _policies_in_force(customer: Customer, on: date) -> dict[CoverageLine, Any]:
    found: dict[CoverageLine, Any] = {}
    for policy in customer.policies:
        if policy.is_in_force(on) and policy.line not in found:
            found[policy.line] = policy
    return found


def _is_peo_poi(customer: Customer, kind: RequestType) -> bool:
    return kind is RequestType.POI and bool(customer.program and customer.program.is_peo)


def certificate_discrepancies(customer: Customer, *, kind: RequestType, holder: HolderInfo, on: date) -> list[str]:
    """Reasons automation must not issue this certificate; ``[]`` means clean."""
    kind = RequestType(kind)
    problems: list[str] = []
    in_force = _policies_in_force(customer, on)
    if not in_force:
        problems.append(f"No policy is in force on {on:%m/%d/%Y}.")
    for policy in customer.policies:
        if policy.line not in in_force and policy.expiry_date < on:
            problems.append(f"The {LINE_TITLES[policy.line].lower()} policy {policy.policy_number} expired on "
                            f"{policy.expiry_date:%m/%d/%Y}.")
        elif (policy.line not in in_force and getattr(policy, "is_cancelled", False)
              and getattr(policy, "cancelled_on", None) is not None and policy.cancelled_on <= on):
            problems.append(f"The {LINE_TITLES[policy.line].lower()} policy {policy.policy_number} was cancelled "
                            f"on {policy.cancelled_on:%m/%d/%Y}.")
    needs_wc = kind is RequestType.COI_WOS or _is_peo_poi(customer, kind)
    if needs_wc and CoverageLine.WORKERS_COMP not in in_force and in_force:
        problems.append("No workers' compensation policy is in force.")
    insurers = {p.insurer_name.strip().lower() for p in in_force.values()}
    if len(insurers) > MAX_INSURERS:
        problems.append(f"More than {MAX_INSURERS} insurers: the certificate has room for {MAX_INSURERS}.")
    if not holder.name.strip():
        problems.append("The certificate holder has no name.")
    if kind is not RequestType.POI:
        missing = [label for label, value in (("street address", holder.address), ("city", holder.city),
                                              ("state", holder.state), ("ZIP code", holder.zip_code))
                   if not (value or "").strip()]
        if missing:
            problems.append("The holder address is incomplete (missing " + ", ".join(missing) + ").")
        elif not re.fullmatch(r"[A-Za-z]{2}", holder.state.strip()) or not re.fullmatch(
                r"\d{5}(-\d{4})?", holder.zip_code.strip()):
            problems.append("The holder address has an invalid state or ZIP code.")
    return problems


def _coverage_row(line: CoverageLine, policy, letters: dict[str, str], *, kind: RequestType) -> dict:
    row: dict[str, Any] = {
        "line": line.value, "title": LINE_TITLES[line], "present": policy is not None,
        "letter": "", "insurer": "", "naic": "", "policy_number": "", "effective": "", "expiry": "",
        "addl_insd": False, "subr_wvd": False, "detail": "",
        "checks": [{"key": k, "label": lbl, "checked": bool(policy is not None and default)}
                   for k, lbl, default in CHECKS[line]],
        "limits": [],
    }
    if policy is None:
        return row
    coverage = dict(getattr(policy, "coverage", None) or {})
    row.update(policy_id=getattr(policy, "id", None), letter=letters[policy.insurer_name.strip().lower()],
               insurer=policy.insurer_name,
               naic=policy.naic_number or "", policy_number=policy.policy_number,
               effective=policy.effective_date.isoformat(), expiry=policy.expiry_date.isoformat(),
               detail=policy.description or "",
               checks=[{"key": k, "label": _check_label(k, lbl, coverage),
                        "checked": _checked(line, k, coverage, default)} for k, lbl, default in CHECKS[line]])
    if line is CoverageLine.WORKERS_COMP:
        row["proprietor_excluded"] = bool(coverage.get("proprietor_excluded", False))
    if line is CoverageLine.OTHER and getattr(policy, "line", line) is not CoverageLine.OTHER:
        row["detail"] = " – ".join(p for p in (LINE_TITLES[policy.line], policy.description or "") if p)
    if line is CoverageLine.WORKERS_COMP and kind is RequestType.COI_WOS:
        row["subr_wvd"] = True
    row["limits"] = _limits(line, policy.limits or {})
    return row


def _limits(line: CoverageLine, values: dict) -> list[dict]:
    known = LIMIT_LABELS[line]
    out = [{"key": k, "label": lbl, "amount": _amount(values[k])} for k, lbl in known
           if values.get(k) not in (None, "")]
    known_keys = {k for k, _ in known}
    out += [{"key": k, "label": _label(k), "amount": _amount(v)} for k, v in values.items()
            if k not in known_keys and v not in (None, "")]
    return out


def _agency() -> dict:
    from app.insurance.agency import get_agency  # not at module level: keeps the models out of the renderer

    return get_agency()


def _default_description(customer: Customer, *, kind: RequestType, holder: HolderInfo,
                         request: CertificateRequest | None, peo: bool) -> str:
    parts: list[str] = []
    if peo:
        parts.append(f"Workers' compensation and employers' liability coverage applies to the employees of "
                     f"{customer.name}, a client company, while working on its behalf.")
    if request is not None and (request.description or "").strip():
        parts.append(request.description.strip())
    project = []
    if request is not None:
        for label, value in (("Project", request.project_name), ("Location", request.project_location),
                             ("Duration", request.project_duration)):
            if (value or "").strip():
                project.append(f"{label}: {value.strip()}")
    if kind is RequestType.COI_WOS:
        parts.append(WOS_WORDING.format(holder=" ".join(holder.name.split())))
        if project:
            parts.append(". ".join(project) + ".")
        if request is not None and (request.contract_details or "").strip():
            parts.append("Contract: " + request.contract_details.strip())
    elif project:
        parts.append(". ".join(project) + ".")
    return "\n".join(parts)


def _chosen_policies(customer: Customer, in_force: dict, edits: dict) -> dict:
    """The policy per row: the one in force by default; staff may choose another of this customer's
    policies for a row (``coverages.<line>.policy_id``) — of the same line, or of any line for the OTHER
    row. A policy that is not in force may be chosen; the issue guard then refuses to issue it."""
    chosen = dict(in_force)
    by_id = {p.id: p for p in customer.policies}
    for line_value, edit in edits.items():
        raw = (edit or {}).get("policy_id") if isinstance(edit, dict) else None
        if raw in (None, ""):
            continue
        try:
            line = CoverageLine(line_value)
            policy = by_id[int(raw)]
        except (ValueError, KeyError, TypeError):
            raise CertificateDataError("The chosen policy is not on file for this customer.") from None
        if line is not CoverageLine.OTHER and policy.line is not line:
            raise CertificateDataError(f"Policy {policy.policy_number} is a {LINE_TITLES[policy.line].lower()} "
                                       f"policy: it cannot print on the {LINE_TITLES[line].lower()} row.")
        chosen[line] = policy
    return chosen


def build_certificate_data(customer: Customer, *, kind: RequestType, holder: HolderInfo, on: date,
                           request: CertificateRequest | None = None, overrides: dict | None = None) -> dict:
    """Everything printed on the certificate, as plain JSON-serialisable values."""
    kind = RequestType(kind)
    overrides = overrides or {}
    if overrides.get("holder"):
        edits = {k: str(v).strip() for k, v in overrides["holder"].items()
                 if k in HolderInfo.__dataclass_fields__ and str(v or "").strip()}
        holder = HolderInfo(**{**asdict(holder), **edits})
    peo = _is_peo_poi(customer, kind)
    in_force = _policies_in_force(customer, on)
    if not in_force:
        raise CertificateDataError(f"No policy is in force on {on:%m/%d/%Y}.")
    in_force = _chosen_policies(customer, in_force, overrides.get("coverages") or {})
    lines = [CoverageLine.WORKERS_COMP] if peo else LINE_ORDER
    if peo and CoverageLine.WORKERS_COMP not in in_force:
        raise CertificateDataError("No workers' compensation policy is in force.")
    if kind is RequestType.COI_WOS and CoverageLine.WORKERS_COMP not in in_force:
        raise CertificateDataError("A waiver of subrogation needs a workers' compensation policy in force.")

    insurers: list[dict] = []
    letters: dict[str, str] = {}
    for line in lines:
        policy = in_force.get(line)
        if policy is None:
            continue
        key = policy.insurer_name.strip().lower()
        if key not in letters:
            if len(insurers) == MAX_INSURERS:
                raise CertificateDataError(f"More than {MAX_INSURERS} insurers: the certificate has room for "
                                           f"{MAX_INSURERS}.")
            letters[key] = "ABCDEF"[len(insurers)]
            insurers.append({"letter": letters[key], "name": policy.insurer_name, "naic": policy.naic_number or ""})

    coverages = [_coverage_row(line, in_force.get(line), letters, kind=kind) for line in lines]
    for row in coverages:
        edit = (overrides.get("coverages") or {}).get(row["line"])
        if not edit:
            continue
        if not row["present"]:
            raise CertificateDataError(f"There is no {row['title'].lower()} policy in force to edit.")
        if "limits" in edit and isinstance(edit["limits"], dict):
            current = {item["key"]: item["amount"] for item in row["limits"]}
            for k, v in edit["limits"].items():
                if v in (None, ""):
                    current.pop(k, None)
                else:
                    current[str(k)] = _amount(v)
            row["limits"] = _limits(CoverageLine(row["line"]), current)
        for field in ("policy_number", "insurer", "naic"):
            if field in edit and str(edit[field] or "").strip():
                row[field] = str(edit[field]).strip()[:200]
        for field in ("effective", "expiry"):
            if field in edit and str(edit[field] or "").strip():
                row[field] = _iso(edit[field])
        for field in ("addl_insd", "subr_wvd"):
            if field in edit:
                row[field] = edit[field] in (True, "1", "on", "true", "yes", "Y", "y")
        if row["line"] == CoverageLine.WORKERS_COMP.value:
            row["addl_insd"] = False  # N/A on the workers' compensation row

    if "description" in overrides and overrides["description"] is not None:
        description = str(overrides["description"])
    else:
        description = _default_description(customer, kind=kind, holder=holder, request=request, peo=peo)

    return {
        "kind": kind.value,
        "date": on.isoformat(),
        "producer": _agency(),
        "insured": {
            "name": customer.name, "address": customer.address or "",
            "city_line": HolderInfo(name="", city=customer.city or "", state=customer.state or "",
                                    zip_code=customer.zip_code or "").city_line,
        },
        "insurers": insurers,
        "coverages": coverages,
        "description": _clean(description).strip(),
        "holder": asdict(holder),
        "peo": peo,
        "request_id": request.id if request is not None else None,
        "certificate_number": "",
        "revision": 0,
    }


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


def description_lines(description: str) -> list[str]:
    return _wrap(description, DESCRIPTION_FONT, DESCRIPTION_SIZE, DESCRIPTION_W)


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


def _html_to_pdf(html: str) -> bytes:
    from xhtml2pdf import pisa

    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, link_callback=link_callback, resource_policy=_policy(),
                            encoding="utf-8")
    if result.err:
        raise RuntimeError(f"certificate PDF rendering failed ({result.err} error(s))")
    return out.getvalue()


def render_base_pdf(data: dict) -> bytes:
    """The certificate without the holder text (the part mass generation shares between holders)."""
    return _html_to_pdf(render_html(data))


def render_certificate_pdf(data: dict, seal=None) -> bytes:
    """COI / COI-with-WOS layout; the simpler POI layout when ``data["kind"] == "poi"``. When ``data`` has a
    ``verification`` ({"code", "url"}), the verification code and its QR code are stamped too; with ``seal``
    (``signing.Seal``) the file is signed in the same update."""
    base = Stamper(render_base_pdf(data))
    return base.stamp(HolderInfo.from_dict(data.get("holder") or {}), IssueStamp.from_data(data), seal)


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


def qr_matrix(url: str) -> list[list[bool]]:
    import segno

    # A fixed mask: choosing the "best" of eight costs ~5x the time (mass generation draws one per holder),
    # and every mask is valid QR that readers decode (the tests decode it with zxing-cpp).
    return [[bool(v) for v in row] for row in segno.make_qr(url, error="m", mask=0, boost_error=False).matrix]


def verification_content(stamp: IssueStamp, font_name: bytes = b"/CDHolder",
                         number_slots: tuple[tuple[float, float], ...] = ()) -> bytes:
    """PDF operators that draw the QR code of ``stamp.url`` (filled squares, one per dark module), the
    verification code and address beside it, and (``number_slots``: x, baseline y of the certificate
    number and the revision in the COVERAGES bar) the number and revision in white."""
    ops = [b"q 0 g"]
    matrix = qr_matrix(stamp.url) if stamp.url else []
    if matrix:
        n = len(matrix)
        cell = QR_SIZE / n
        for r, row in enumerate(matrix):
            c = 0
            while c < n:  # one rectangle per run of dark modules in a row
                if not row[c]:
                    c += 1
                    continue
                start = c
                while c < n and row[c]:
                    c += 1
                ops.append(b"%.3f %.3f %.3f %.3f re" % (QR_X + start * cell, QR_Y + (n - 1 - r) * cell,
                                                        (c - start) * cell, cell))
        ops.append(b"f")
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
    matrix = qr_matrix(stamp.url) if stamp.url else []
    if matrix:
        n = len(matrix)
        cell = VERIFY_PAGE_QR / n
        for r, row in enumerate(matrix):
            c = 0
            while c < n:
                if not row[c]:
                    c += 1
                    continue
                start = c
                while c < n and row[c]:
                    c += 1
                ops.append(b"%.3f %.3f %.3f %.3f re" % (qr_x + start * cell, qr_y + (n - 1 - r) * cell,
                                                        (c - start) * cell, cell))
        ops.append(b"f")
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
        slots = _find_markers(_html_to_pdf(render_html(marked, lines)), 0, NUMBER_MARKERS)
        if slots is None:  # pragma: no cover - the markers are plain text in fixed cells
            return None
        return Stamper(_html_to_pdf(render_html(data, lines)), number_slots=tuple(slots))
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
    slots = _find_markers(_html_to_pdf(render_html(marked, before + markers[:k] + after)), k, markers)
    if slots is None:  # pragma: no cover - the marker is plain text in a fixed line
        return None
    return Stamper(_html_to_pdf(render_html(data, before + ["\u00a0"] * k + after)), name_slots=tuple(slots[:k]),
                   number_slots=tuple(slots[k:]))


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


# -- sample (preview and benchmark) -------------------------------------------------------------------------

def sample_data(kind: str = "coi") -> dict:
    """A complete made-up certificate, for previewing the layout and for the benchmark (no database)."""
    from types import SimpleNamespace

    kind_enum = RequestType(kind)
    start, end = date(2026, 1, 1), date(2027, 1, 1)

    def policy(insurer, naic, number, limits):
        return SimpleNamespace(insurer_name=insurer, naic_number=naic, policy_number=number, effective_date=start,
                               expiry_date=end, description="", limits=limits)

    policies = {
        CoverageLine.GENERAL_LIABILITY: policy("Example Casualty Company", "10001", "GL-2026-000417", {
            "each_occurrence": 1_000_000, "damage_to_rented_premises": 100_000, "medical_expense": 5_000,
            "personal_adv_injury": 1_000_000, "general_aggregate": 2_000_000, "products_completed_ops": 2_000_000}),
        CoverageLine.AUTOMOBILE: policy("Sample Mutual Insurance", "20002", "CA-2026-118204",
                                        {"combined_single_limit": 1_000_000}),
        CoverageLine.UMBRELLA: policy("Example Casualty Company", "10001", "UMB-2026-00931",
                                      {"each_occurrence": 5_000_000, "aggregate": 5_000_000}),
        CoverageLine.WORKERS_COMP: policy("Demo Workers Comp Fund", "30003", "WC-2026-557310", {
            "el_each_accident": 1_000_000, "el_disease_each_employee": 1_000_000,
            "el_disease_policy_limit": 1_000_000}),
    }
    lines = [CoverageLine.WORKERS_COMP] if kind_enum is RequestType.POI else LINE_ORDER
    letters = {"example casualty company": "A", "sample mutual insurance": "B", "demo workers comp fund": "C"}
    holder = HolderInfo(name="Riverside Independent School District Facilities and Construction Department",
                        address="1200 Riverside Drive, Building C", city="Austin", state="TX", zip_code="78741")
    description = "Commercial roofing and sheet-metal work performed for the certificate holder."
    if kind_enum is RequestType.COI_WOS:
        description += "\n" + WOS_WORDING.format(holder=_flat(holder.name)) + (
            "\nProject: Eastside Elementary re-roofing. Location: 4400 East 7th St, Austin, TX. Duration: 6 months.")
    if kind_enum is RequestType.POI:
        description = ("Workers' compensation and employers' liability coverage applies to the employees of "
                       "Example Roofing & Sheet Metal LLC, a client company, while working on its behalf.")
    return {
        "kind": kind_enum.value, "date": "2026-06-01",
        "producer": {"name": "Example Insurance Agency", "contact_name": "Certificates Desk",
                     "phone": "(512) 555-0100", "email": "certificates@agency.example.com",
                     "address": "100 Congress Avenue, Suite 400", "city": "Austin", "state": "TX",
                     "zip_code": "78701", "authorized_representative": "Jordan Example"},
        "insured": {"name": "Example Roofing & Sheet Metal LLC", "address": "1 Main Street",
                    "city_line": "Austin, TX 78701"},
        "insurers": [{"letter": "A", "name": "Example Casualty Company", "naic": "10001"},
                     {"letter": "B", "name": "Sample Mutual Insurance", "naic": "20002"},
                     {"letter": "C", "name": "Demo Workers Comp Fund", "naic": "30003"}][
                         2 if kind_enum is RequestType.POI else 0:],
        "coverages": [_coverage_row(line, policies.get(line), letters, kind=kind_enum) for line in lines],
        "description": description, "holder": asdict(holder), "peo": kind_enum is RequestType.POI,
        "request_id": None, "certificate_number": "20260601-00042-7F3A9C", "revision": 1,
    }


if __name__ == "__main__":  # python -m app.insurance.pdf [coi|coi_wos|poi] [out.pdf]
    import sys

    kind_arg = sys.argv[1] if len(sys.argv) > 1 else "coi"
    target = Path(sys.argv[2] if len(sys.argv) > 2 else f"certificate-sample-{kind_arg}.pdf")
    target.write_bytes(render_certificate_pdf(sample_data(kind_arg)))
    print(target)
