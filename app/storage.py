"""File store: content-addressed files outside the web root.

``save(data, filename)`` returns a key (``ab/cdef...``: the SHA-256 of the bytes), so storing the
same document twice keeps one copy. Files are only ever served by views that send them as
attachments. Another backend (S3, ...) implements the same three methods and is chosen by config.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import current_app


class FileStore(Protocol):
    def save(self, data: bytes) -> str: ...
    def open(self, key: str) -> BinaryIO: ...
    def path(self, key: str) -> Path: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...


class FilesystemStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not key or ".." in key or key.startswith("/"):
            raise ValueError("invalid storage key")
        return self.root / key

    def save(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest[2:]}"
        target = self._path(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write to a temp file and rename, so a crash never leaves half a file under the key.
            fd, tmp = tempfile.mkstemp(dir=target.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        return key

    def save_file(self, source: str | os.PathLike) -> str:
        """Store a file already on disk (large generated output) without reading it into memory."""
        sha = hashlib.sha256()
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
        digest = sha.hexdigest()
        key = f"{digest[:2]}/{digest[2:]}"
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return key

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def path(self, key: str) -> Path:
        return self._path(key)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def get_store() -> FilesystemStore:
    return FilesystemStore(current_app.config["UPLOAD_DIR"])


def attachment_response(key: str, filename: str, mimetype: str = "application/pdf"):
    """A stored file as a download (never shown inline from our origin), or None if it is missing."""
    from flask import send_file

    store = get_store()
    if not key or not store.exists(key):
        return None
    response = send_file(store.path(key), mimetype=mimetype, as_attachment=True, download_name=filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def certificate_download(cert):
    """An issued certificate's PDF as an attachment, or None when its file is missing."""
    return attachment_response(cert.document_key, cert.filename or f"{cert.certificate_number}.pdf")
