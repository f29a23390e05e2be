from flask import Blueprint

bp = Blueprint("portal", __name__)

from app.portal import card, links, routes  # noqa: E402,F401
