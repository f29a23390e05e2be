"""The reviewer's preview draws what a customer typed into a fillable PDF, as poppler shows it."""

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from app.exemptions.preview import render_page_png
from app.uploads import PDF

FORMS = Path(__file__).resolve().parents[1] / "fixtures" / "exemption-forms"
# Just above the "Issued to Seller" line of the MTC form at 96 dpi, where "Spoontiques, Inc." is filled in.
SELLER_BOX = (145, 133, 400, 146)


def _dark_share(image: Image.Image) -> float:
    gray = image.convert("L").crop(SELLER_BOX)
    histogram = gray.histogram()
    return sum(histogram[:128]) / (gray.width * gray.height)


def test_preview_of_filled_mtc_form_shows_the_seller_like_poppler(tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm (Debian poppler-utils) is required: apt-get install poppler-utils")
    path = FORMS / "mtc_uniform_sales_use_resale_cert.pdf"
    ours = Image.open(io.BytesIO(render_page_png(path.read_bytes(), PDF, page=1, zoom=1.0)))
    subprocess.run(["pdftoppm", "-r", "96", "-f", "1", "-l", "1", "-png", str(path), str(tmp_path / "p")], check=True)
    poppler = Image.open(next(tmp_path.glob("p*.png"))).resize(ours.size)

    assert _dark_share(poppler) > 0.04  # poppler draws the seller's name there
    assert _dark_share(ours) > 0.04  # and so does the preview (blank: 0.0)
    region_diff = ImageStat.Stat(ImageChops.difference(ours.convert("L").crop(SELLER_BOX),
                                                       poppler.convert("L").crop(SELLER_BOX))).mean[0]
    assert region_diff < 40
