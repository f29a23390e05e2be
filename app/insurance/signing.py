"""PAdES signatures on issued certificates (pyHanko).

Every issued certificate PDF is signed with the key and certificate named by ``CERT_SIGNING_KEY`` /
``CERT_SIGNING_CERT`` (PEM file paths). ``make run`` creates a self-signed pair under ``instance/signing/``
when none is set (``ensure_self_signed_pair``); a process that issues without either set does the same
and logs a warning, so a laptop works out of the box — production sets its own pair.

The SHA-256 stored with a certificate is of the signed file: signing appends an incremental update
(the signature covers every byte before it), so one changed byte breaks the signature.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

FIELD_NAME = "CertDeskSignature"
SELF_SIGNED_NAME = "CertDesk certificate signing (self-signed)"

_lock = threading.Lock()
_cache: dict[tuple, object] = {}


def ensure_self_signed_pair(folder: Path, *, common_name: str = SELF_SIGNED_NAME) -> tuple[Path, Path]:
    """A key + self-signed certificate (PEM) in ``folder``, created once; returns (key path, cert path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    key_path, cert_path = folder / "signing-key.pem", folder / "signing-cert.pem"
    if key_path.is_file() and cert_path.is_file():
        return key_path, cert_path
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CertDesk")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _paths() -> tuple[Path, Path]:
    from flask import current_app

    key, cert = current_app.config.get("CERT_SIGNING_KEY"), current_app.config.get("CERT_SIGNING_CERT")
    if key and cert:
        return Path(key), Path(cert)
    folder = Path(current_app.instance_path) / "signing"
    if not (folder / "signing-key.pem").is_file():
        log.warning("CERT_SIGNING_KEY / CERT_SIGNING_CERT are not set: signing certificates with a self-signed "
                    "pair under %s (set your own in production)", folder)
    return ensure_self_signed_pair(folder)


def get_signer():
    """The pyHanko signer for the configured pair (loaded once per pair and file version)."""
    from pyhanko.sign import signers

    key_path, cert_path = _paths()
    if not key_path.is_file() or not cert_path.is_file():
        raise RuntimeError(f"certificate signing key or certificate not found: {key_path}, {cert_path}")
    cache_key = (str(key_path), key_path.stat().st_mtime_ns, str(cert_path), cert_path.stat().st_mtime_ns)
    with _lock:
        signer = _cache.get(cache_key)
        if signer is None:
            signer = signers.SimpleSigner.load(str(key_path), str(cert_path))
            if signer is None:
                raise RuntimeError("the certificate signing key or certificate could not be read")
            _cache.clear()
            _cache[cache_key] = signer
    return signer


def sign_pdf(pdf: bytes, *, signer=None, reason: str = "Certificate of insurance issued by CertDesk") -> bytes:
    """``pdf`` with a PAdES (ETSI.CAdES.detached) signature appended as an incremental update."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, reason=reason,
                                        subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
    signer = signer or get_signer()

    return _off_the_event_loop(lambda: signers.sign_pdf(writer, meta, signer=signer, in_place=False).getvalue())


def _off_the_event_loop(fn):
    """pyHanko runs ``asyncio.run()`` inside; a caller already in an event loop (a browser test, an async
    server) runs it on a helper thread instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def signature_status(pdf: bytes, *, trust_cert_path: Path | None = None) -> dict:
    """Validate the signatures in ``pdf``: {"signed", "intact", "valid", "trusted", "covers_whole_file"}.

    ``intact``: the signed bytes are unchanged; ``trusted``: the signer's certificate chains to
    ``trust_cert_path`` (our own certificate when given).
    """
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    sigs = reader.embedded_signatures
    if not sigs:
        return {"signed": False, "intact": False, "valid": False, "trusted": False, "covers_whole_file": False}
    trust = [load_cert_from_pemder(str(trust_cert_path))] if trust_cert_path else []
    context = ValidationContext(trust_roots=trust, allow_fetching=False) if trust else None
    status = _off_the_event_loop(lambda: validate_pdf_signature(sigs[-1], context, skip_diff=False))
    return {"signed": True, "intact": bool(status.intact), "valid": bool(status.valid),
            "trusted": bool(status.trusted), "covers_whole_file": status.coverage.name == "ENTIRE_FILE"}
