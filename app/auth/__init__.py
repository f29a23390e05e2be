from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import routes  # noqa: E402,F401


def _register_link_expander() -> None:
    from app.auth.invitations import expand_placeholders
    from app.notify import DELIVERY_EXPANDERS

    if expand_placeholders not in DELIVERY_EXPANDERS:
        DELIVERY_EXPANDERS.append(expand_placeholders)


_register_link_expander()
