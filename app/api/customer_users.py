"""JSON API: invite a customer user (the invitation e-mail carries a single-use set-password link)."""

from __future__ import annotations

from flask import jsonify, request

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user, error
from app.auth import invitations
from app.extensions import db
from app.models import Customer
from app.models.base import utcnow

MAX_ID = 2**31 - 1


@bp.route("/customers/<int:customer_id>/users", methods=["POST"])
@api_requires("manage_customers")
def invite_customer_user(customer_id: int):
    customer = db.session.get(Customer, customer_id) if 0 < customer_id <= MAX_ID else None
    if customer is None:
        return error("Not found.", 404)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("Send a JSON object with email (and optionally name).", 422,
                     fields={"body": "Expected a JSON object."})
    fields = {}
    email, name = body.get("email"), body.get("name", "")
    if not isinstance(email, str) or not email.strip():
        fields["email"] = "An e-mail address is required."
    if name is None:
        name = ""
    if not isinstance(name, str):
        fields["name"] = "name must be a string."
    if fields:
        return error("Some fields are not valid.", 422, fields=fields)
    try:
        user, invitation = invitations.invite_customer_user(customer, email=email, name=name, actor=api_user(),
                                                            now=utcnow())
    except invitations.InvitationError as exc:
        db.session.rollback()
        status = 409 if exc.conflict else 422
        return error(str(exc), status, fields=exc.errors)
    db.session.commit()
    return jsonify({"id": user.id, "email": user.email, "name": user.name, "customer_id": customer.id,
                    "invitation_expires_at": invitation.expires_at.isoformat()}), 201


OPENAPI_SCHEMAS["CustomerUserInput"] = {
    "type": "object", "required": ["email"],
    "properties": {"email": {"type": "string", "format": "email", "maxLength": 254},
                   "name": {"type": "string", "maxLength": 120}},
}
OPENAPI_SCHEMAS["CustomerUserInvited"] = {
    "type": "object",
    "properties": {"id": {"type": "integer", "description": "The new user's id"},
                   "email": {"type": "string"}, "name": {"type": "string"}, "customer_id": {"type": "integer"},
                   "invitation_expires_at": {"type": "string", "format": "date-time"}},
}


def _json(ref: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


OPENAPI_PATHS["/api/v1/customers/{id}/users"] = {
    "post": {
        "summary": "Invite a customer user: e-mails a single-use, expiring set-password link; answers the user id",
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CustomerUserInput"}}}},
        "responses": {
            "201": _json("CustomerUserInvited",
                         "Invited: the user exists (without a password) and the e-mail is queued"),
            "401": _json("Error", "Missing or invalid token"),
            "403": _json("Error", "The role may not manage customer users"),
            "404": _json("Error", "No such customer"),
            "409": _json("Error", "A user with this e-mail exists already"),
            "422": _json("Error", "Invalid fields (fields names each one)"),
        },
    }
}
