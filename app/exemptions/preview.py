"""Server-side previews: PDF pages (and images) are rendered to PNG here, so the reviewer's browser
never runs the customer's document. pypdfium2 renders the page; Pillow re-encodes images."""

from __future__ import annotations

import io
import threading

from app.uploads import PDF

# PDFium is not thread-safe: two page images rendered at once in a threaded server (the edit page
# loads every page together) crash the process. One render at a time per process.
PDFIUM_LOCK = threading.Lock()

ZOOMS = (0.75, 1.0, 1.5, 2.0)
BASE_DPI = 96
MAX_PIXELS = 4000


def clamp_zoom(value) -> float:
    try:
        zoom = float(value)
    except (TypeError, ValueError):
        return 1.0
    return min(ZOOMS, key=lambda z: abs(z - zoom))


def render_page_png(data: bytes, content_type: str, page: int = 1, zoom: float = 1.0) -> bytes:
    """PNG bytes of page ``page`` (1-based). Raises IndexError for a page that does not exist."""
    from PIL import Image

    if content_type == PDF:
        import pypdfium2 as pdfium

        with PDFIUM_LOCK:
            pdf = pdfium.PdfDocument(data)
            try:
                # Filled-in form fields (an electronically completed MTC or NY form) are drawn only once
                # PDFium's form environment exists; without it the reviewer would see a blank form.
                pdf.init_forms()
                if page < 1 or page > len(pdf):
                    raise IndexError(page)
                pdf_page = pdf[page - 1]
                width, height = pdf_page.get_size()  # points (1/72 in)
                scale = zoom * BASE_DPI / 72
                scale = min(scale, MAX_PIXELS / max(width, height, 1))
                image = pdf_page.render(scale=scale, may_draw_forms=True).to_pil()
                pdf_page.close()
            finally:
                pdf.close()
    else:
        if page != 1:
            raise IndexError(page)
        with Image.open(io.BytesIO(data)) as src:
            image = src.convert("RGB")
            image.thumbnail((int(1000 * zoom), int(1400 * zoom)))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
