"""JSON API: invite a customer user (the invitation e-mail carries a single-use set-password link)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import jsonify, request
from pydantic import BeforeValidator, Field

from app.api import bp
from app.api.auth import api_requires, api_user, error
from app.api.contract import (
    UNAUTHORIZED,
    In,
    Out,
    RequiredText,
    ValidationError_,
    ok,
    operation,
    parse,
    path_id,
    refused,
)
from app.auth import invitations
from app.extensions import db
from app.models import Customer
from app.models.base import utcnow

MAX_ID = 2**31 - 1


def _name(value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


class CustomerUserInput(In):
    email: RequiredText = Field(json_schema_extra={"format": "email", "maxLength": 254})
    # the length (after runs of spaces become one) is the service's check
    name: Annotated[str, BeforeValidator(_name), Field(json_schema_extra={"maxLength": 120})] = ""
    messages = {"email": "An e-mail address is required.", "name": "name must be a string."}


class CustomerUserInvited(Out):
    id: int = Field(description="The new user's id")
    email: str
    name: str
    customer_id: int
    invitation_expires_at: datetime


@bp.route("/customers/<int:customer_id>/users", methods=["POST"])
@api_requires("manage_customers")
@operation("POST", "/customers/{id}/users", params=[path_id()], body=CustomerUserInput,
           summary="Invite a customer user: e-mails a single-use, expiring set-password link; answers the user id",
           replies={201: ok(CustomerUserInvited, "Invited: the user exists (without a password) and the e-mail is "
                                                 "queued"),
                    **UNAUTHORIZED, 403: refused("The role may not manage customer users"),
                    404: refused("No such customer"),
                    409: refused("A user with this e-mail exists already", ValidationError_),
                    422: refused("Invalid fields (fields names each one)", ValidationError_)})
def invite_customer_user(customer_id: int):
    customer = db.session.get(Customer, customer_id) if 0 < customer_id <= MAX_ID else None
    if customer is None:
        return error("Not found.", 404)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("Send a JSON object with email (and optionally name).", 422,
                     fields={"body": "Expected a JSON object."})
    asked, fields = parse(CustomerUserInput, body)
    if fields:
        return error("Some fields are not valid.", 422, fields=fields)
    try:
        user, invitation = invitations.invite_customer_user(customer, email=asked.email, name=asked.name,
                                                            actor=api_user(),
                                                            now=utcnow())
    except invitations.InvitationError as exc:
        db.session.rollback()
        status = 409 if exc.conflict else 422
        return error(str(exc), status, fields=exc.errors)
    db.session.commit()
    return jsonify({"id": user.id, "email": user.email, "name": user.name, "customer_id": customer.id,
                    "invitation_expires_at": invitation.expires_at.isoformat()}), 201
