"""A complete made-up certificate, for previewing the layout and for the benchmark (no database).

``python -m app.insurance.sample [coi|coi_wos|poi] [out.pdf]`` renders it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path

from app.enums import CoverageLine, RequestType
from app.insurance.batching import _flat
from app.insurance.certificate_data import LINE_ORDER, WOS_WORDING, _coverage_row
from app.insurance.layout import HolderInfo
from app.insurance.rendering import render_certificate_pdf

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


if __name__ == "__main__":  # python -m app.insurance.sample [coi|coi_wos|poi] [out.pdf]
    import sys

    kind_arg = sys.argv[1] if len(sys.argv) > 1 else "coi"
    target = Path(sys.argv[2] if len(sys.argv) > 2 else f"certificate-sample-{kind_arg}.pdf")
    target.write_bytes(render_certificate_pdf(sample_data(kind_arg)))
    print(target)
