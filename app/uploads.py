"""Upload checks by content (never by extension or the browser's claimed type) and size."""

from __future__ import annotations

import io
from dataclasses import dataclass

from flask import current_app

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


def sniff(data: bytes) -> str | None:
    if data.startswith(b"%PDF-") or (b"%PDF-" in data[:1024]):
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
        raise UploadRejected("The file is empty.")
    if len(data) > limit:
        raise UploadRejected(f"The file is larger than the {limit // (1024 * 1024)} MB limit.")
    kind = sniff(data)
    names = ", ".join(sorted(EXTENSIONS[t].upper() for t in allowed))
    if kind is None or kind not in allowed:
        raise UploadRejected(f"This file is not a {names} document (its content was checked).")
    pages = 1
    try:
        if kind == PDF:
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data), strict=False)
            pages = len(reader.pages)
            if pages == 0:
                raise UploadRejected("The PDF has no pages.")
        else:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as img:
                img.verify()
    except UploadRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged file
        raise UploadRejected("The file is damaged or incomplete and cannot be read.") from exc
    safe_name = _safe_filename(filename, EXTENSIONS[kind])
    return CheckedUpload(data=data, content_type=kind, filename=safe_name, page_count=pages)


def _safe_filename(filename: str, extension: str) -> str:
    from werkzeug.utils import secure_filename

    stem = secure_filename(filename or "").rsplit(".", 1)[0] or "document"
    return f"{stem[:80]}.{extension}"
