"""Prefill from a filled form: each real fillable form in the fixtures is recognised, what it holds is read
(the seller half that the fixtures carry fills nothing of the buyer's), and the same forms filled in by a
buyer give back exactly what the buyer typed."""

import io

import pypdf
import pytest

from app.exemptions.prefill import PrefillError, read_prefill
from tests.paths import EXEMPTION_FORMS


def _fill(name: str, values: dict) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(str(EXEMPTION_FORMS / name)))
    for page in writer.pages:
        if page.get("/Annots"):
            writer.update_page_form_field_values(page, values, auto_regenerate=False)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# As the fixtures come: which form is recognised, and what a buyer would get (nothing: only the seller
# part is filled in these copies).
@pytest.mark.parametrize(("name", "form"), [
    ("tx_01-339_resale_cert.pdf", "Texas 01-339"),
    ("ny_st-120_resale_cert.pdf", "New York ST-120"),
    ("mtc_uniform_sales_use_resale_cert.pdf", "Multistate uniform (MTC)"),
    ("mi_3372_exemption_cert.pdf", "Michigan 3372"),
    ("dc_otr-368_resale_cert.pdf", "District of Columbia OTR-368"),
    ("ma_st-4_resale_cert.pdf", None),
])
def test_real_forms_are_recognised_and_seller_fields_fill_nothing(name, form):
    found, prefill = read_prefill((EXEMPTION_FORMS / name).read_bytes())
    assert found == form
    assert prefill == {}


FILLED = [
    ("tx_01-339_resale_cert.pdf",
     {"Purchaser": "Lone Star Resale LLC", "Purchaser address": "500 Congress Ave",
      "Purchaser city, state, ZIP": "Austin, TX 78701", "Permit number": "32012345678",
      "Purchaser title": "Controller", "Purchaser sig date": "11/20/2026"},
     {"form_type": "state_specific", "reason": "resale", "purchaser_name": "Lone Star Resale LLC",
      "purchaser_address": "500 Congress Ave, Austin, TX 78701", "signer_title": "Controller",
      "signed_on": "2026-11-20",
      "jurisdictions": [{"state": "TX", "state_id_number": "32012345678", "expiration_date": ""}]}),
    ("ny_st-120_resale_cert.pdf",
     {"purchaser's name": "Empire Gifts Inc", "purchaser's address": "1 Broadway", "purchaser city": "New York",
      "purchaser state": "NY", "purchaser zip code": "10004", "coa number 1": "12-3456789",
      "print signer's name": "Dana Buyer", "date signed": "2026-11-21"},
     {"form_type": "state_specific", "reason": "resale", "purchaser_name": "Empire Gifts Inc",
      "purchaser_address": "1 Broadway, New York, NY, 10004", "signer_name": "Dana Buyer",
      "signed_on": "2026-11-21",
      "jurisdictions": [{"state": "NY", "state_id_number": "12-3456789", "expiration_date": ""}]}),
    ("mtc_uniform_sales_use_resale_cert.pdf",
     {"Name of Firm Buyer": "Multi State Retail Co", "Address_2": "9 Commerce Way, Omaha, NE 68102",
      "State Registration Sellers Permit or ID Number of PurchaserTX25": "32099999999",
      "State Registration Sellers Permit or ID Number of PurchaserNE17": "NE-0042",
      "Title": "Buyer", "Date": "1/5/2026"},
     {"form_type": "uniform_multistate", "reason": "resale", "purchaser_name": "Multi State Retail Co",
      "purchaser_address": "9 Commerce Way, Omaha, NE 68102", "signer_title": "Buyer", "signed_on": "2026-01-05",
      "jurisdictions": [{"state": "NE", "state_id_number": "NE-0042", "expiration_date": ""},
                        {"state": "TX", "state_id_number": "32099999999", "expiration_date": ""}]}),
    ("dc_otr-368_resale_cert.pdf",
     {"PURCHASER": "Capitol Stationers", "PURCHASER'S ADDRESS": "100 K St NW",
      "CITY, STATE, ZIP 2": "Washington, DC 20001", "DC CERT OF REGISTRATION #": "DC-777", "TITLE": "Owner",
      "DATE": "03/02/2026"},
     {"form_type": "state_specific", "reason": "resale", "purchaser_name": "Capitol Stationers",
      "purchaser_address": "100 K St NW, Washington, DC 20001", "signer_title": "Owner", "signed_on": "2026-03-02",
      "jurisdictions": [{"state": "DC", "state_id_number": "DC-777", "expiration_date": ""}]}),
]


@pytest.mark.parametrize(("name", "typed", "expected"), FILLED, ids=[f[0] for f in FILLED])
def test_a_buyer_filled_form_gives_back_what_was_typed(name, typed, expected):
    _, prefill = read_prefill(_fill(name, typed))
    assert prefill == expected


def test_password_protected_and_damaged_documents_say_so():
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(str(EXEMPTION_FORMS / "tx_01-339_resale_cert.pdf")))
    writer.encrypt(user_password="secret", owner_password="owner")
    locked = io.BytesIO()
    writer.write(locked)
    with pytest.raises(PrefillError, match="password-protected"):
        read_prefill(locked.getvalue())
    with pytest.raises(PrefillError, match="damaged"):
        read_prefill(b"%PDF-1.7\nnot really a pdf")
