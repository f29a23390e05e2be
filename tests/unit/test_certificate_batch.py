"""Mass generation: render_batch writes one certificate per holder, as one merged PDF or a ZIP of PDFs."""

from __future__ import annotations

import io
import zipfile

import pytest
from pypdf import PdfReader

from app.insurance import certificate_data, rendering, sample
from app.insurance.batching import render_batch
from app.insurance.layout import HolderInfo
from app.insurance.rendering import render_certificate_pdf

HOLDERS = [
    HolderInfo(name="Alpha Builders Inc", address="1 First St", city="Austin", state="TX", zip_code="78701"),
    HolderInfo(name="Beta (Paren) \\ Backslash & Sons", address="2 Second St", city="Dallas", state="TX",
               zip_code="75201"),
    HolderInfo(name="The Board of Trustees of the Riverside Independent School District Facilities Department",
               address="3 Third St", city="Houston", state="TX", zip_code="77002"),
    HolderInfo(name="Café Müller GmbH", address="4 Fourth St", city="El Paso", state="TX", zip_code="79901"),
]


def flat(text: str) -> str:
    return " ".join(text.split())


def holder_lines_in(text: str, holder: HolderInfo) -> bool:
    return all(line in text for line in holder.lines())


@pytest.fixture
def data():
    return sample.sample_data("coi")


def test_merged_pdf_has_one_page_per_holder_each_naming_its_holder(tmp_path, data):
    out = tmp_path / "all.pdf"
    calls = []
    assert render_batch(data, HOLDERS, out, mode="merged", progress=lambda d, t: calls.append((d, t))) == 4
    reader = PdfReader(out, strict=True)
    assert len(reader.pages) == len(HOLDERS)
    for page, holder in zip(reader.pages, HOLDERS, strict=True):
        text = page.extract_text()
        assert holder_lines_in(text, holder), (holder.name, text[-300:])
        assert "Example Roofing & Sheet Metal LLC" in text  # the common part is on every page
        others = [h for h in HOLDERS if h is not holder]
        assert not any(h.lines()[0] in text for h in others)
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)


def test_zip_has_one_pdf_per_holder_in_order(tmp_path, data):
    out = tmp_path / "all.zip"
    assert render_batch(data, HOLDERS, out, mode="zip") == 4
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert len(names) == len(HOLDERS) and all(n.endswith(".pdf") for n in names)
        assert names[0].startswith("0001-Alpha-Builders-Inc")
        for name, holder in zip(names, HOLDERS, strict=True):
            reader = PdfReader(io.BytesIO(zf.read(name)), strict=True)
            assert len(reader.pages) == 1
            assert holder_lines_in(reader.pages[0].extract_text(), holder)


def test_stamped_certificate_matches_single_render(tmp_path, data):
    """A batch certificate is the same document a single render gives for that holder."""
    out = tmp_path / "one.zip"
    render_batch(data, HOLDERS[:1], out, mode="zip")
    with zipfile.ZipFile(out) as zf:
        batch_text = PdfReader(io.BytesIO(zf.read(zf.namelist()[0]))).pages[0].extract_text()
    single = {**data, "holder": {**data["holder"], **HOLDERS[0].__dict__}}
    single_text = PdfReader(io.BytesIO(render_certificate_pdf(single))).pages[0].extract_text()
    assert batch_text == single_text


def test_holder_specific_wording_gets_each_holders_name(tmp_path):
    """A WOS description names the holder: each certificate names its own holder there too."""
    data = sample.sample_data("coi_wos")
    data["holder"]["name"] = HOLDERS[0].name
    wording = certificate_data.WOS_WORDING.format(holder=HOLDERS[0].name)
    data["description"] = wording + "\nProject: Eastside Elementary."
    out = tmp_path / "wos.pdf"
    assert render_batch(data, HOLDERS[:3], out, mode="merged") == 3
    reader = PdfReader(out)
    assert len(reader.pages) == 3
    for page, holder in zip(reader.pages, HOLDERS[:3], strict=True):
        text = flat(page.extract_text())
        assert "in favor of the certificate holder:" in text
        assert text.count(flat(holder.name)) == 2  # in the description and in the holder box
        assert holder_lines_in(page.extract_text(), holder)
        assert not any(flat(h.name) in text for h in HOLDERS[:3] if h is not holder)


def test_holder_specific_wording_is_stamped_not_rerendered(tmp_path, monkeypatch):
    """1,000 WOS certificates must not cost 1,000 renders: the base is rendered twice, whatever the count."""
    data = sample.sample_data("coi_wos")
    renders = []
    real = rendering.html_to_pdf
    monkeypatch.setattr(rendering, "html_to_pdf", lambda html: renders.append(1) or real(html))
    holders = [HolderInfo(name=f"Holder {i} LLC", address="1 Road", city="Austin", state="TX", zip_code="78701")
               for i in range(30)]
    render_batch(data, holders, tmp_path / "wos.zip", mode="zip")
    assert len(renders) == 2
    with zipfile.ZipFile(tmp_path / "wos.zip") as zf:
        text = flat(PdfReader(io.BytesIO(zf.read(zf.namelist()[17]))).pages[0].extract_text())
    assert text.count("Holder 17 LLC") == 2


def test_holder_named_inside_a_sentence_falls_back_to_full_renders(tmp_path):
    data = sample.sample_data("coi")
    data["holder"]["name"] = HOLDERS[0].name
    data["description"] = f"Work for {HOLDERS[0].name} at its yard."
    out = tmp_path / "inline.pdf"
    render_batch(data, HOLDERS[:2], out, mode="merged")
    reader = PdfReader(out)
    assert "Work for Beta (Paren) \\ Backslash & Sons at its yard." in flat(reader.pages[1].extract_text())


def test_long_description_keeps_its_remarks_page_for_every_holder(tmp_path, data):
    data["description"] = " ".join(f"word{i}" for i in range(700))
    out = tmp_path / "long.pdf"
    render_batch(data, HOLDERS[:2], out, mode="merged")
    reader = PdfReader(out)
    assert len(reader.pages) == 4
    assert HOLDERS[0].name in reader.pages[0].extract_text()
    assert "ADDITIONAL REMARKS" in reader.pages[1].extract_text()
    assert HOLDERS[1].lines()[0] in reader.pages[2].extract_text()
    assert "word699" in reader.pages[3].extract_text()


def test_unknown_mode_and_empty_list(tmp_path, data):
    with pytest.raises(ValueError):
        render_batch(data, HOLDERS, tmp_path / "x", mode="tar")
    assert render_batch(data, [], tmp_path / "empty.zip", mode="zip") == 0
    assert zipfile.ZipFile(tmp_path / "empty.zip").namelist() == []


@pytest.mark.parametrize("mode", ["zip", "merged"])
def test_proof_of_insurance_batch(tmp_path, mode):
    out = tmp_path / f"poi.{mode}"
    assert render_batch(sample.sample_data("poi"), HOLDERS[:2], out, mode=mode) == 2
    if mode == "zip":
        with zipfile.ZipFile(out) as zf:
            texts = [PdfReader(io.BytesIO(zf.read(n))).pages[0].extract_text() for n in zf.namelist()]
    else:
        texts = [p.extract_text() for p in PdfReader(out).pages]
    assert len(texts) == 2
    for text, holder in zip(texts, HOLDERS[:2], strict=True):
        assert "PROOF OF INSURANCE" in text and "ISSUED TO" in text and holder_lines_in(text, holder)


def test_stamped_files_open_in_chromiums_pdf_engine(tmp_path, data):
    """A second, independent reader (pdfium, as in Chromium) sees the same pages and holder text."""
    import pypdfium2 as pdfium

    out = tmp_path / "all.pdf"
    render_batch(data, HOLDERS, out, mode="merged")
    doc = pdfium.PdfDocument(str(out))
    assert len(doc) == len(HOLDERS)
    for index, holder in enumerate(HOLDERS):
        text = doc[index].get_textpage().get_text_range()
        assert holder.lines()[0] in text
        bitmap = doc[index].render(scale=0.5).to_pil()
        assert bitmap.size[0] > 200
    doc.close()
    render_batch(data, HOLDERS[3:], tmp_path / "one.zip", mode="zip")
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        single = pdfium.PdfDocument(zf.read(zf.namelist()[0]))
        assert "Café Müller GmbH" in single[0].get_textpage().get_text_range()
        single.close()
