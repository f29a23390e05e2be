"""Public certificate verification: ``/verify/<code>`` (the QR code on every certificate) and ``/verify``
(upload a PDF: is it byte for byte one CertDesk issued?). No login; rate limited; shows nothing about the
customer beyond what the certificate itself prints."""

from flask import Blueprint

bp = Blueprint("verify", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.verify import routes  # noqa: F401
