"""The public link page stores a document only with an accepted submission: "more states" posts and
invalid submissions keep it in one scratch file per link, which the sweep deletes after an hour."""

import io
import os
import re
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app.extensions import db
from app.models import ExemptionCertificate
from app.models.base import utcnow
from app.sweeper import run_sweep
from tests.paths import EXEMPTION_FORMS

DOC = (EXEMPTION_FORMS / "tx_01-339_resale_cert.pdf").read_bytes()


def _files(app) -> dict[str, list[Path]]:
    root = Path(app.config["UPLOAD_DIR"])
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return {"scratch": [p for p in files if p.parent.name == "scratch"],
            "store": [p for p in files if p.parent.name != "scratch"]}


def test_rejected_posts_store_nothing_and_scratch_is_swept(app, client, make):
    req, token = make.exemption_request(make.customer())
    url = f"/portal/r/{token}"
    for i in range(5):  # "more states" with a (different) document each time
        response = client.post(url, data={**make.exemption_form(), "add_rows": "1",
                                          "document": (io.BytesIO(DOC + b"%" * i), "cert.pdf")},
                               content_type="multipart/form-data")
        assert response.status_code == 200
    for i in range(5):  # invalid submissions (no signer) with a document
        response = client.post(url, data={**make.exemption_form(signer_name=""),
                                          "document": (io.BytesIO(DOC + b"#" * i), "cert.pdf")},
                               content_type="multipart/form-data")
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert "cert.pdf" in page  # kept for the next post
    files = _files(app)
    assert files["store"] == []
    assert len(files["scratch"]) == 1  # one per link: at most one upload's bytes
    assert files["scratch"][0].stat().st_size <= len(DOC) + 5

    # The kept document completes the submission without choosing it again; only then is it stored.
    token_value = re.search(r'name="kept_document"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="kept_document"', page)
    assert token_value is not None
    response = client.post(url, data={**make.exemption_form(), "kept_document": token_value.group(1)},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    cert = db.session.scalar(sa.select(ExemptionCertificate).where(ExemptionCertificate.request_id == req.id))
    assert cert is not None and len(_files(app)["store"]) >= 1

    # An hour later the sweep deletes the scratch file.
    [scratch] = _files(app)["scratch"]
    old = (utcnow() - timedelta(hours=2)).timestamp()
    os.utime(scratch, (old, old))
    assert run_sweep(utcnow())["upload_scratch"] == 1
    assert _files(app)["scratch"] == []
