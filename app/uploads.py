"""Upload checks by content (never by extension or the browser's claimed type) and size."""

from __future__ import annotations

import io
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
EXTENSIONS = {PDF: "pdf", PNG: "png", JPEG: "jpg"}


class UploadRejected(ValueError):
    """The file is not acceptable; the message is safe to show to the user."""


@dataclass(frozen=True)
class CheckedUpload:
    data: bytes
    content_type: str
    filename: str
    page_count: int


UTF8_BOM = b"\xef\xbb\xbf"


def sniff(data: bytes) -> str | None:
    # A PDF starts with "%PDF-" (after at most a BOM and whitespace). Readers tolerate junk before
    # it, which is how an HTML page with a PDF tucked behind it would pass as a certificate.
    head = data[:1024]
    head = head[len(UTF8_BOM):] if head.startswith(UTF8_BOM) else head
    if head.lstrip(b" \t\r\n\f").startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    return None


def check_upload(data: bytes, filename: str, *, allowed: frozenset[str] = frozenset({PDF, PNG, JPEG}),
                 max_bytes: int | None = None) -> CheckedUpload:
    """Return the checked upload or raise UploadRejected with a message for the user.

    Genuine tax forms carry JavaScript, form actions and embedded files; they are accepted and kept
    as uploaded, because they are only ever served as attachments or rendered to images.
    """
    limit = max_bytes or current_app.config["MAX_UPLOAD_BYTES"]
    if not data:
        raise UploadRejected(gettext("The file is empty."))
    if len(data) > limit:
        raise UploadRejected(gettext("The file is larger than the %(mb)s MB limit.", mb=limit // (1024 * 1024)))
    kind = sniff(data)
    names = ", ".join(sorted(EXTENSIONS[t].upper() for t in allowed))
    if kind is None or kind not in allowed:
        raise UploadRejected(gettext("This file is not a %(kinds)s document (its content was checked).", kinds=names))
    pages = 1
    try:
        if kind == PDF:
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data), strict=False)
            # pypdf opens forms locked only against editing (empty open password) by itself;
            # a file that needs a password to open cannot be reviewed.
            if reader.is_encrypted and not reader.decrypt(""):
                raise UploadRejected(gettext(
                    "The PDF is password-protected. Save or print it without a password and upload it again."))
            pages = len(reader.pages)
            if pages == 0:
                raise UploadRejected(gettext("The PDF has no pages."))
        else:
            import warnings

            from PIL import Image

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap speaks
                try:
                    img = Image.open(io.BytesIO(data))
                except Image.DecompressionBombError:
                    _check_pixels(None, None)
            with img:
                _check_pixels(*img.size)
                img.verify()
    except UploadRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged file
        raise UploadRejected(gettext("The file is damaged or incomplete and cannot be read.")) from exc
    safe_name = _safe_filename(filename, EXTENSIONS[kind])
    return CheckedUpload(data=data, content_type=kind, filename=safe_name, page_count=pages)


def _check_pixels(width: int | None, height: int | None) -> None:
    """Images are decoded for previews: a huge scan costs seconds of CPU and much memory each time."""
    limit = current_app.config["MAX_IMAGE_PIXELS"]
    if width is None or width * height > limit:
        if width is None:
            raise UploadRejected(gettext(
                "The image has more than the %(mp)s megapixel limit. Scan at a lower resolution (300 dpi is "
                "plenty) and upload it again.", mp=limit // 1_000_000))
        raise UploadRejected(gettext(
            "The image is %(w)s × %(h)s pixels, more than the %(mp)s megapixel limit. "
            "Scan at a lower resolution (300 dpi is plenty) and upload it again.",
            w=width, h=height, mp=limit // 1_000_000))


def _safe_filename(filename: str, extension: str) -> str:
    from werkzeug.utils import secure_filename

    stem = secure_filename(filename or "").rsplit(".", 1)[0] or "document"
    return f"{stem[:80]}.{extension}"


def answers_oversize_files(view):
    """Mark a form view that reports a too-large file itself, with everything else that was typed kept.

    Its requests may be up to OVERSIZE_FORM_BYTES (instead of MAX_CONTENT_LENGTH), so the form fields
    arrive and check_upload() answers "larger than the limit" on the form; beyond that, 413."""
    view.answers_oversize_files = True
    return view


def init_app(app) -> None:
    from flask import request

    @app.url_value_preprocessor  # runs before every before_request (CSRF reads the form there)
    def allow_oversize_form(endpoint, values):
        if getattr(app.view_functions.get(endpoint), "answers_oversize_files", False):
            request.max_content_length = app.config["OVERSIZE_FORM_BYTES"]
