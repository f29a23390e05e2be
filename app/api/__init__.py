"""JSON API v1: bearer tokens from ``flask create-api-token``; same services as the pages.

Each resource lives in its own module and adds its paths to ``OPENAPI_PATHS`` for the published
OpenAPI document.
"""

from flask import Blueprint

bp = Blueprint("api", __name__)

OPENAPI_PATHS: dict = {}
OPENAPI_SCHEMAS: dict = {}

from app.api import (  # noqa: E402,F401
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
