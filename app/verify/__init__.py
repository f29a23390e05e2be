"""Public certificate verification: ``/verify/<code>`` (the QR code on every certificate) and ``/verify``
(upload a PDF: is it byte for byte one CertDesk issued?). No login; rate limited; shows nothing about the
customer beyond what the certificate itself prints."""

from flask import Blueprint

bp = Blueprint("verify", __name__)

from app.verify import routes  # noqa: E402,F401
