from flask import jsonify

from app.api import bp
from app.api.auth import api_requires, api_user
from app.api.contract import UNAUTHORIZED, Out, document, ok, operation
from app.auth.access import public


class Me(Out):
    id: int
    email: str
    role: str
    customer_id: int | None


@bp.route("/me")
@api_requires("authenticated")
@operation("GET", "/me", summary="The user the bearer token acts as", replies={200: ok(Me, "The user"), **UNAUTHORIZED})
def me():
    user = api_user()
    return jsonify({"id": user.id, "email": user.email, "role": str(user.role), "customer_id": user.customer_id})


@bp.route("/openapi.json")
@public
def openapi():
    """Generated from the models and operations the API modules declare (``app.api.contract``)."""
    return jsonify(document())
