from flask import jsonify

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user
from app.auth.access import public

OPENAPI_PATHS["/api/v1/me"] = {
    "get": {
        "summary": "The user the bearer token acts as",
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "The user",
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}},
                      "401": {"description": "Missing or invalid token"}},
    }
}
OPENAPI_SCHEMAS["Me"] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "email": {"type": "string"}, "role": {"type": "string"},
                   "customer_id": {"type": ["integer", "null"]}},
}
OPENAPI_SCHEMAS["Error"] = {"type": "object", "properties": {"error": {"type": "string"}}}


@bp.route("/me")
@api_requires("authenticated")
def me():
    user = api_user()
    return jsonify({"id": user.id, "email": user.email, "role": str(user.role), "customer_id": user.customer_id})


@bp.route("/openapi.json")
@public
def openapi():
    return jsonify({
        "openapi": "3.1.0",
        "info": {"title": "CertDesk API", "version": "1.0.0"},
        "paths": OPENAPI_PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": OPENAPI_SCHEMAS,
        },
    })
