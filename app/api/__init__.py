"""JSON API v1: bearer tokens from ``flask create-api-token``; same services as the pages.

Each resource lives in its own module with its request and response models and declares its operations
(``app.api.contract.operation``); the published OpenAPI document is generated from them.
"""

from flask import Blueprint

bp = Blueprint("api", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.api import (  # noqa: F401
        audit_packs,
        certificate_requests,
        customer_users,
        customers,
        exemption_rules,
        exemptions,
        metrics,
        routes,
        webhooks,
    )
