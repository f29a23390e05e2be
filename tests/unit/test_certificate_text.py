"""Nothing typed is lost on the certificate: long descriptions continue on as many additional-remarks
pages as they need (read back with pypdf), unbroken words are broken, long holders are set smaller."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from app.insurance.layout import CONTINUED, HolderInfo, description_lines
from app.insurance.rendering import render_certificate_pdf
from app.insurance.sample import sample_data


def pages_of(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def description_text(pages: list[str]) -> str:
    """Everything printed, with every line break and space removed."""
    everything = "\n".join(pages)
    return re.sub(r"\s+", "", everything.replace(CONTINUED, ""))


def assert_every_line_printed_in_order(pages: list[str], description: str) -> None:
    """Each wrapped description line is a printed line, in order across the pages, and the wrapped lines
    put together are the text typed (so nothing was dropped by wrapping either)."""
    wrapped = description_lines(description)
    assert re.sub(r"\s+", "", "".join(wrapped)) == re.sub(r"\s+", "", description)
    printed = [line.strip() for page in pages for line in page.splitlines()]
    at = 0
    for line in wrapped:
        try:
            at = printed.index(line.strip(), at) + 1
        except ValueError:
            raise AssertionError(f"description line not printed (or out of order): {line!r}") from None


def _tall_other_row(data: dict) -> dict:
    for row in data["coverages"]:
        if row["line"] == "other":
            row.update(present=True, letter="A", policy_number="INM-" + "9" * 30,
                       detail="Inland marine contractor's equipment floater, scheduled and unscheduled",
                       limits=[{"key": f"k{i}", "label": f"Scheduled item {i}", "amount": 1000 * i}
                               for i in range(1, 7)])
    return data


@pytest.mark.parametrize("kind", ["coi", "coi_wos", "poi"])
def test_two_hundred_locations_every_one_printed(kind):
    data = _tall_other_row(sample_data(kind))
    locations = [f"Location {i}: {100 + i} Sunrise Rd, Round Rock, TX 78664" for i in range(1, 201)]
    data["description"] = "\n".join(locations)
    pages = pages_of(render_certificate_pdf(data))
    assert len(pages) >= 3, "200 lines need more than one additional remarks page"
    assert CONTINUED in pages[0]
    assert all("ADDITIONAL REMARKS" in page for page in pages[1:2])
    assert_every_line_printed_in_order(pages, data["description"])
    text = description_text(pages)
    assert [loc for loc in locations if re.sub(r"\s+", "", loc) not in text] == []


def test_five_thousand_characters_without_a_space_are_broken_not_cut():
    data = sample_data("coi")
    marker = "".join(chr(ord("a") + (i % 26)) for i in range(5000))
    data["description"] = "Before. " + marker + " After-the-long-word."
    pages = pages_of(render_certificate_pdf(data))
    assert len(pages) >= 2
    assert_every_line_printed_in_order(pages, data["description"])
    assert len(description_lines(marker)) > 20  # broken into many lines, each printed in full


def test_remarks_pages_name_the_certificate_and_keep_the_footer():
    data = sample_data("coi")
    data["description"] = "\n".join(f"Vehicle {i}: VIN 1FTFW1E50NFA{i:05d}" for i in range(400))
    pages = pages_of(render_certificate_pdf(data))
    assert len(pages) >= 4
    remarks = len(pages) - 1
    for number, page in enumerate(pages[1:], start=1):
        assert f"ADDITIONAL REMARKS (PAGE {number} OF {remarks})" in page
        assert data["certificate_number"] in page
    assert_every_line_printed_in_order(pages, data["description"])


def test_a_holder_too_long_for_nine_points_is_set_smaller_not_cut():
    holder = HolderInfo(name="Riverside Consolidated Independent School District " * 4, address="Suite " * 30,
                        city="Round Rock Municipal Utility District Number Seven", state="TX", zip_code="78664")
    data = {**sample_data("coi"), "holder": holder.__dict__}
    first = re.sub(r"\s+", "", pages_of(render_certificate_pdf(data))[0])
    for part in (holder.name, holder.address, holder.city):
        assert re.sub(r"\s+", "", part) in first


def test_policy_data_prints_fax_boxes_basis_retention_auto_limits_and_proprietor_exclusion():
    from datetime import date
    from types import SimpleNamespace

    from app.enums import CoverageLine, RequestType
    from app.insurance.certificate_data import _coverage_row

    def policy(number, limits, coverage):
        return SimpleNamespace(id=1, insurer_name="Example Casualty Company", naic_number="10001",
                               policy_number=number, effective_date=date(2026, 1, 1), expiry_date=date(2027, 1, 1),
                               description="", limits=limits, coverage=coverage)

    letters = {"example casualty company": "A"}
    data = sample_data("coi")
    data["producer"]["fax"] = "(512) 555-0199"
    data["coverages"] = [
        _coverage_row(CoverageLine.GENERAL_LIABILITY, policy("GL-9", {"each_occurrence": 1_000_000},
                      {"form": "claims_made", "aggregate_basis": "project"}), letters, kind=RequestType.COI),
        _coverage_row(CoverageLine.AUTOMOBILE, policy("CA-9", {"bodily_injury_per_person": 500_000,
                                                               "bodily_injury_per_accident": 1_000_000,
                                                               "property_damage": 250_000},
                      {"scheduled": True, "hired": True}), letters, kind=RequestType.COI),
        _coverage_row(CoverageLine.UMBRELLA, policy("UMB-9", {"each_occurrence": 5_000_000, "retention": 10_000},
                      {"kind": "excess", "form": "occurrence"}), letters, kind=RequestType.COI),
        _coverage_row(CoverageLine.WORKERS_COMP, policy("WC-9", {"el_each_accident": 1_000_000},
                      {"per_statute": True, "proprietor_excluded": True}), letters, kind=RequestType.COI),
    ]
    checked = {(r["line"], c["label"]): c["checked"] for r in data["coverages"] for c in r["checks"]}
    assert checked[("general_liability", "Claims-made")] and not checked[("general_liability", "Occur")]
    assert checked[("automobile", "Scheduled autos")] and checked[("automobile", "Hired autos")]
    assert not checked[("automobile", "Any auto")]
    assert checked[("umbrella", "Excess liab")] and not checked[("umbrella", "Umbrella liab")]
    text = " ".join(pages_of(render_certificate_pdf(data))[0].split())
    for printed in ("FAX: (512) 555-0199", "Gen'l aggregate applies per project", "BODILY INJURY (PER PERSON) $500,000",
                    "BODILY INJURY (PER ACCIDENT) $1,000,000", "PROPERTY DAMAGE (PER ACCIDENT) $250,000",
                    "RETENTION $10,000", "executive officer excluded? Y"):
        assert printed in text, printed
