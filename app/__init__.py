"""CertDesk application factory."""

from __future__ import annotations

import logging
import os

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Conflict as HTTPConflict
from werkzeug.exceptions import NotFound

from config import Config

BLUEPRINTS = (
    ("app.auth", None),
    ("app.portal", "/portal"),
    ("app.exemptions", "/exemptions"),
    ("app.dashboard", "/dashboard"),
    ("app.customers", "/customers"),
    ("app.admin", "/admin"),
    ("app.api", "/api/v1"),
    ("app.verify", None),
)


def create_app(config_class: type = Config) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static", instance_relative_config=False)
    app.config.from_object(config_class)
    _require_secret_key(app)
    os.makedirs(app.config["UPLOAD_DIR"], exist_ok=True)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        os.makedirs(os.path.dirname(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]) or ".",
                    exist_ok=True)

    from app.extensions import csrf, db, jobs, limiter, login, migrate

    _register_id_converter(app)
    if app.config.get("TRUSTED_PROXY_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only as many X-Forwarded-* hops as there are proxies we run: a client cannot pick its address.
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    # Rate-limit counters carry the instance prefix: two instances on one Redis never share them.
    app.config.setdefault("RATELIMIT_KEY_PREFIX", app.config["QUEUE_PREFIX"].rstrip(":") + ":limits")
    limiter._key_prefix = ""  # Flask-Limiter keeps the first app's prefix; take this app's (tests make many)
    from app.ratelimit import storage_uri

    # Counters in Redis at one round trip a request (the hit also answers the X-RateLimit-* headers).
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app.config.get("RATELIMIT_STORAGE_URI"))
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login.init_app(app)
    login.login_view = "auth.login"
    login.login_message = "Please sign in to continue."
    login.login_message_category = "error"
    limiter.init_app(app)
    jobs.init_app(app)

    from app import i18n

    i18n.init_app(app)

    from app import models  # noqa: F401 - register every table with the metadata

    @login.user_loader
    def load_user(session_user_id: str):
        # "<id>:<session_version>": a session from before the last logout, password change or
        # reset, or disabling of the user names an old version and loads nobody.
        from app.validation import parse_id, parse_int

        user_id, _, version = (session_user_id or "").partition(":")
        user_id, version = parse_id(user_id), parse_int(version)
        user = db.session.get(models.User, user_id) if user_id else None
        if user is None or version is None or user.session_version != version:
            return None
        return user

    import importlib

    for module_name, prefix in BLUEPRINTS:
        module = importlib.import_module(module_name)
        module.load_views()
        app.register_blueprint(module.bp, url_prefix=prefix)

    from app.api import bp as api_bp

    csrf.exempt(api_bp)  # bearer-token API: no cookies, so no CSRF

    _register_template_helpers(app)
    _register_input_filter(app)
    from app import uploads

    uploads.init_app(app)
    _register_error_handlers(app)
    _register_security_headers(app)

    _build_registries()
    from app.cli import register_cli

    register_cli(app)
    logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)
    return app


def _build_registries() -> None:
    """The lists other modules read, filled here in one place rather than by importing a feature package:
    the demo-data steps of ``flask seed-demo`` (in this order), the outbox's link expanders (placeholders
    replaced with a fresh link only when a message is delivered) and the sweep's repair steps."""
    from app import cli, notify, sweeper
    from app.auth.invitations import expand_placeholders
    from app.customers.holders import seed_demo_holders
    from app.exemptions.demo import seed_exemptions
    from app.exemptions.services import expand_link_placeholders
    from app.insurance.demo import seed_demo_requests
    from app.insurance.processing import seed_rejection_reasons

    cli.SEED_HOOKS[:] = [seed_demo_holders, seed_exemptions, seed_demo_requests, seed_rejection_reasons]
    notify.DELIVERY_EXPANDERS[:] = [expand_placeholders, expand_link_placeholders]
    sweeper.install()


def _register_id_converter(app: Flask) -> None:
    """``<int:x>`` and ``<id:x>`` in every route match only 0..2**31-1 (ids are 32-bit): a larger
    number is a 404, never an integer overflow in the database. Registered before the blueprints."""
    from werkzeug.routing import IntegerConverter

    class BoundedInt(IntegerConverter):
        def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002
            super().__init__(map, fixed_digits=fixed_digits, min=min, signed=signed,
                             max=2**31 - 1 if max is None else max)

    class Id(BoundedInt):
        def __init__(self, map, fixed_digits=0, min=1, max=None, signed=False):  # noqa: A002
            super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    app.url_map.converters["int"] = BoundedInt
    app.url_map.converters["id"] = Id


class MissingSecretKey(RuntimeError):
    """Raised at start-up: outside development a SECRET_KEY must be configured."""


def _require_secret_key(app: Flask) -> None:
    """Sessions, CSRF tokens and exemption links are signed with SECRET_KEY; a known default would
    let anyone forge an admin session, so outside development there is no default at all."""
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("CERTDESK_ENV") == "development":
        from pathlib import Path

        from config import instance_secret_key

        app.config["SECRET_KEY"] = instance_secret_key(Path(app.config["INSTANCE_DIR"]))
        return
    raise MissingSecretKey(
        "SECRET_KEY is not set. Set it to a long random value (see docs/deploy.md), or set "
        "CERTDESK_ENV=development on a development machine to use a random key kept under instance/."
    )


def _register_template_helpers(app: Flask) -> None:
    from app import enums
    from app.auth.access import can

    @app.context_processor
    def inject_globals():
        return {
            "enums": enums,
            "Role": enums.Role,
            "can": can,
            "seller_name": app.config["SELLER_NAME"],
        }

    @app.template_global()
    def main_nav():
        """The header's navigation links: the same for every user of one role (``can`` asks the role only),
        so rendered once per process, role and language rather than on every page."""
        from flask_login import current_user
        from markupsafe import Markup

        from app.i18n import current_language

        kept = app.extensions.setdefault("certdesk.nav", {})
        key = (current_user.role, current_language(), request.script_root)
        html = kept.get(key)
        if html is None:
            html = kept[key] = Markup(render_template("_nav.html"))
        return html

    @app.template_filter("datefmt")
    def datefmt(value, fmt: str = "%b %d, %Y"):
        from app.i18n import format_day

        return format_day(value, fmt)

    @app.template_filter("datetimefmt")
    def datetimefmt(value, fmt: str = "%b %d, %Y %H:%M UTC"):
        from app.i18n import format_moment

        return format_moment(value, fmt)

    @app.template_filter("money")
    def money(value):
        if value is None:
            return ""
        return f"${value:,.2f}" if isinstance(value, float) else f"${value:,}"


def _register_input_filter(app: Flask) -> None:
    """Every query, form and JSON value, before any view sees it: NUL (which no keyboard types and
    PostgreSQL cannot store), other invisible control characters and bidi overrides (U+202A-202E,
    U+2066-2069) are dropped, so no search fails on them and no name, address or note is saved with
    them. A path with a NUL names nothing: 404."""
    from flask import abort
    from werkzeug.datastructures import ImmutableMultiDict

    from app.validation import BIDI_CONTROLS_RE, CONTROL_CHARS_RE

    def clean(text: str) -> str:
        return BIDI_CONTROLS_RE.sub("", CONTROL_CHARS_RE.sub("", text))

    def clean_json(value):
        if isinstance(value, str):
            return clean(value)
        if isinstance(value, list):
            return [clean_json(v) for v in value]
        if isinstance(value, dict):
            return {clean(k): clean_json(v) for k, v in value.items()}
        return value

    def clean_multidict(values):
        return ImmutableMultiDict([(clean(k), clean(v)) for k, v in values.items(multi=True)])

    @app.before_request
    def filter_input():
        if "\x00" in request.path:
            if request.path.startswith("/portal/r/"):
                # No link token holds a NUL: the link page's neutral answer, as for any tampered token.
                from app.portal.links import unavailable

                return unavailable()
            abort(404)
        request.args = clean_multidict(request.args)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            request.form = clean_multidict(request.form)
            if request.is_json:
                body = request.get_json(silent=True)
                if body is not None:
                    body = clean_json(body)
                    request._cached_json = (body, body)  # what get_json() returns from now on
        request.__dict__.pop("values", None)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _no_such_resource(error) -> bool:
    """Werkzeug answers 405 for ``PATCH /customers/99999999999`` because the GET rule's path matched before
    its id failed the bounded converter; the allowed method finds nothing there either, so it is a 404."""
    from flask import current_app

    allowed = [m for m in (getattr(error, "valid_methods", None) or []) if m not in ("HEAD", "OPTIONS")]
    if not allowed:
        return False
    try:
        current_app.url_map.bind_to_environ(request.environ).match(method=allowed[0])
    except NotFound:
        return True
    except Exception:  # noqa: BLE001 - a redirect or anything else: the 405 stands
        return False
    return False


def _register_error_handlers(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    messages = {
        400: _l("The request could not be understood."),
        401: _l("Please sign in."),
        403: _l("You do not have permission to do that."),
        404: _l("Not found."),
        405: _l("That method is not allowed here."),
        409: _l("Someone else changed this first. Reload to see the current state."),
        413: _l("The upload is too large."),
        422: _l("Some of what you sent is not valid."),
        429: _l("Too many attempts. Please wait a minute and try again."),
        500: _l("Something went wrong on our side. Nothing was saved."),
    }

    def handle(error):
        code = getattr(error, "code", 500) or 500
        if code == 405 and _no_such_resource(error):
            error = NotFound()
            code = 404
        if code == 500:
            from app.extensions import db

            db.session.rollback()
        message = str(messages.get(code, getattr(error, "description", "Error")))
        if isinstance(error, CSRFError):
            message = str(_l("Your form expired or is missing its security token. Reload the page and try again."))
        if _wants_json():
            response = jsonify({"error": message})
        else:
            response = app.make_response(render_template("errors/error.html", code=code, message=message))
        if getattr(error, "valid_methods", None):  # 405 says which methods are allowed
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response, code

    for code in messages:
        app.register_error_handler(code, handle)

    from sqlalchemy.orm.exc import StaleDataError

    def lost_race(error):
        """Two saves of the same row at once: the version counter let the first win; the second is a 409
        that says so (never a 500), and nothing of it was saved."""
        from app.extensions import db

        db.session.rollback()
        return handle(HTTPConflict())

    app.register_error_handler(StaleDataError, lost_race)
    app.register_error_handler(CSRFError, handle)


def _register_security_headers(app: Flask) -> None:
    from flask_login import current_user

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static":
            # Pages, downloads and link pages carry personal data, reset passwords and live links:
            # no browser or proxy keeps a copy (signed in: even if the view chose otherwise).
            if current_user.is_authenticated:
                response.headers["Cache-Control"] = "no-store"
            else:
                response.headers.setdefault("Cache-Control", "no-store")
        if app.config["BASE_URL"].startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'",
        )
        return response
