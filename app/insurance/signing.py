"""PAdES signatures on issued certificates (pyHanko).

Every issued certificate PDF is signed with the key and certificate named by ``CERT_SIGNING_KEY`` /
``CERT_SIGNING_CERT`` (PEM file paths). ``make run`` creates a self-signed pair under ``instance/signing/``
when none is set (``ensure_self_signed_pair``); a process that issues without either set does the same
and logs a warning, so a laptop works out of the box — production sets its own pair.

The SHA-256 stored with a certificate is of the signed file: signing appends an incremental update
(the signature covers every byte before it), so one changed byte breaks the signature.

Two ways in, one kind of signature (PAdES baseline B, ``ETSI.CAdES.detached``, SHA-256):
- ``Seal``: for the certificates CertDesk renders (one or thousands). The stamping code in
  ``app.insurance.stamping`` writes the signature field, the signature dictionary with a fixed-size
  ``/Contents`` hole and its ``/ByteRange`` in the same incremental update as the holder and the QR code;
  it hashes the two byte ranges with hashlib and asks ``Seal.cms`` for the CMS container, which pyHanko's
  signer builds from that digest (signed attributes, signing-certificate-v2, the RSA/ECDSA signature).
  No re-parsing of the file: ~2-3 ms a certificate instead of ~145 ms, so every ZIP member of a mass
  generation is signed.
- ``sign_pdf``: pyHanko's own incremental signer, for files we did not write ourselves (an uploaded,
  already-issued certificate; the combined PDF of a mass generation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
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
            loaded = signers.SimpleSigner.load(str(key_path), str(cert_path))
            if loaded is None:
                raise RuntimeError("the certificate signing key or certificate could not be read")
            signer = kept_key_signer(loaded)
            _cache.clear()
            _cache[cache_key] = signer
    return signer


REASON = "Certificate of insurance issued by CertDesk"
ECDSA_TRIES = 32
RESERVE_MARGIN = 64  # bytes of /Contents hole beyond the template container (an ECDSA signature varies by a few)


class Seal:
    """A signer prepared for many certificates: the loaded key and certificate, the size of the
    ``/Contents`` hole, the reason and the signing time written into each signature dictionary.
    ``cms(digest)`` is the DER CMS container for the SHA-256 of a file's two signed byte ranges."""

    field_name = FIELD_NAME

    def __init__(self, signer, *, signed_at: datetime, reason: str = REASON) -> None:
        self.signer = signer
        self.reason = reason
        self.signed_at = signed_at
        self._template = _template(signer)
        self.reserve = len(self._template.der) + RESERVE_MARGIN

    def cms(self, digest: bytes) -> bytes:
        """The CMS SignedData for ``digest`` (PAdES: no signing-time attribute; the time is the dictionary's
        /M): pyHanko's container for this signer, with this digest and its own signature."""
        return self._template.fill(digest, self.signer)

    @property
    def pdf_date(self) -> str:
        """``/M`` of the signature dictionary, a PDF date in UTC."""
        at = self.signed_at.astimezone(UTC) if self.signed_at.tzinfo else self.signed_at
        return f"D:{at:%Y%m%d%H%M%S}+00'00'"


class _Template:
    """pyHanko's CMS container for one signer, made once, and where its two per-file values sit.

    For a PAdES signature the signed attributes are content type, message digest and the signing
    certificate (v2): only the message digest differs between two files, and the signature over those
    attributes. Both have a fixed length (32 bytes; an RSA signature is as long as the modulus), so each
    file's container is the template with the two values written in place, byte for byte what pyHanko
    would produce, without rebuilding the ASN.1 (~40 ms of asn1crypto a signature). An ECDSA signature's
    DER varies by a byte or two (each is random): the key signs again until one has the template's length
    (about one try in two, ~0.1 ms each), and after ``ECDSA_TRIES`` pyHanko builds the container in full."""

    SEED = hashlib.sha256(b"CertDesk signature template").digest()

    def __init__(self, signer) -> None:
        from asn1crypto import cms

        self.signer = signer
        self.der = _run(signer.async_sign(self.SEED, "sha256", use_pades=True)).dump()
        info = cms.ContentInfo.load(self.der)["content"]["signer_infos"][0]
        self.attrs = info["signed_attrs"].untag().dump(force=True)  # DER SET OF, as signed
        if not self.attrs.startswith(b"\x31"):
            self.attrs = b"\x31" + self.attrs[1:]
        self.signature = info["signature"].native
        self.digest_at = self.der.find(self.SEED)
        self.attrs_digest_at = self.attrs.find(self.SEED)
        self.signature_at = self.der.find(self.signature)
        self.usable = (self.der.count(self.SEED) == 1 and self.attrs.count(self.SEED) == 1
                       and self.der.count(self.signature) == 1)

    def fill(self, digest: bytes, signer) -> bytes:
        if not self.usable or len(digest) != len(self.SEED):  # pragma: no cover - pyHanko's DER has each once
            return _run(signer.async_sign(digest, "sha256", use_pades=True)).dump()
        at = self.attrs_digest_at
        attrs = self.attrs[:at] + digest + self.attrs[at + len(digest):]
        for _ in range(ECDSA_TRIES):
            if hasattr(signer, "sign_raw"):
                signature = signer.sign_raw(attrs, "sha256")
            else:  # pragma: no cover - other pyHanko signers are asynchronous only
                signature = _run(signer.async_sign_raw(attrs, "sha256"))
            if len(signature) == len(self.signature):
                break
        else:  # pragma: no cover - (3/4)^32: about once in 10,000 ECDSA signatures
            return _run(signer.async_sign(digest, "sha256", use_pades=True)).dump()
        der = bytearray(self.der)
        der[self.digest_at:self.digest_at + len(digest)] = digest
        der[self.signature_at:self.signature_at + len(signature)] = signature
        return bytes(der)


_templates: dict[int, _Template] = {}


def _template(signer) -> _Template:
    """The template of ``signer`` (made once per signer object: the configured one is cached)."""
    with _lock:
        found = _templates.get(id(signer))
        if found is None or found.signer is not signer:
            if len(_templates) > 8:
                _templates.clear()
            found = _templates[id(signer)] = _Template(signer)
    return found


def get_seal(*, signed_at: datetime, reason: str = REASON) -> Seal:
    """A ``Seal`` with the configured pair (the key and certificate are loaded once per process)."""
    return Seal(get_signer(), signed_at=signed_at, reason=reason)


_loops = threading.local()


def _run(coro):
    """Run one of pyHanko's coroutines to the end. A thread keeps one event loop (``asyncio.run`` makes and
    closes a loop each time, which costs more than the signature); a caller already inside a running loop
    (a browser test, an async server) runs it on a helper thread instead."""
    import os

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_loops, "loop", None)
        if loop is None or loop.is_closed() or getattr(_loops, "pid", None) != os.getpid():
            loop = _loops.loop = asyncio.new_event_loop()
            _loops.pid = os.getpid()
        return loop.run_until_complete(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro)).result()


def kept_key_signer(signer):
    """``signer`` (a pyHanko ``SimpleSigner``) as one that parses its private key once.

    ``SimpleSigner.sign_raw`` reads the key from DER for every signature, and ``cryptography`` checks an
    RSA key on load (~100-150 ms on our machines): that, not the PDF work, was most of the ~145 ms a
    signature cost. RSA (PKCS#1 v1.5 and PSS) and ECDSA keys are kept loaded; others use pyHanko's path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from pyhanko.sign import signers
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

    class KeptKeySigner(signers.SimpleSigner):
        _key = None

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            if self._key is None:
                self._key = serialization.load_der_private_key(self.signing_key.dump(), password=None)
            key = self._key
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
            try:
                algo = mechanism.signature_algo
            except ValueError:
                algo = mechanism["algorithm"].native
            if algo == "rsassa_pkcs1v15" and isinstance(key, RSAPrivateKey):
                return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
            if algo == "rsassa_pss" and isinstance(key, RSAPrivateKey):
                padding, hash_algo = process_pss_params(mechanism["parameters"])
                return key.sign(data, padding, hash_algo)
            if algo == "ecdsa" and isinstance(key, EllipticCurvePrivateKey):
                return key.sign(data, signature_algorithm=ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
            return super().sign_raw(data, digest_algorithm)

    return KeptKeySigner(signing_cert=signer.signing_cert, signing_key=signer.signing_key,
                         cert_registry=signer.cert_registry, signature_mechanism=signer.signature_mechanism,
                         prefer_pss=signer.prefer_pss, embed_roots=signer.embed_roots)


class UnsignablePdf(ValueError):
    """The PDF cannot be opened for an incremental update (damaged, or locked with a password)."""


def sign_pdf(pdf: bytes, *, signer=None, reason: str = REASON, before=None) -> bytes:
    """``pdf`` with a PAdES (ETSI.CAdES.detached) signature appended as an incremental update;
    ``before(writer)`` may add to the same update first (the verification page of an uploaded certificate).
    Raises ``UnsignablePdf`` when the file cannot be updated."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign import fields, signers

    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        if writer.prev.encrypted:
            raise UnsignablePdf("the PDF is encrypted")
        if before is not None:
            before(writer)
    except (PdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnsignablePdf(f"the PDF could not be read for signing ({exc})") from exc
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
