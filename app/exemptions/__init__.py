from flask import Blueprint

bp = Blueprint("exemptions", __name__)

from app.exemptions import audit_routes, routes  # noqa: E402,F401


def _register_demo() -> None:
    from app.cli import SEED_HOOKS
    from app.exemptions.demo import seed_exemptions

    if seed_exemptions not in SEED_HOOKS:
        SEED_HOOKS.append(seed_exemptions)


_register_demo()


def _register_link_expander() -> None:
    from app.exemptions.services import expand_link_placeholders
    from app.notify import DELIVERY_EXPANDERS

    if expand_link_placeholders not in DELIVERY_EXPANDERS:
        DELIVERY_EXPANDERS.append(expand_link_placeholders)


_register_link_expander()
