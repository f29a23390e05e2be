"""CertDesk application factory."""

from __future__ import annotations

import logging
import os

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError

from config import Config

BLUEPRINTS = (
    ("app.auth", None),
    ("app.portal", "/portal"),
    ("app.exemptions", "/exemptions"),
    ("app.dashboard", "/dashboard"),
    ("app.customers", "/customers"),
    ("app.admin", "/admin"),
    ("app.api", "/api/v1"),
)


def create_app(config_class: type = Config) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static", instance_relative_config=False)
    app.config.from_object(config_class)
    os.makedirs(app.config["UPLOAD_DIR"], exist_ok=True)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        os.makedirs(os.path.dirname(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]) or ".",
                    exist_ok=True)

    from app.extensions import csrf, db, htmx, jobs, limiter, login, migrate

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login.init_app(app)
    login.login_view = "auth.login"
    login.login_message = "Please sign in to continue."
    login.login_message_category = "error"
    htmx.init_app(app)
    limiter.init_app(app)
    jobs.init_app(app)

    from app import models  # noqa: F401 - register every table with the metadata

    @login.user_loader
    def load_user(user_id: str):
        return db.session.get(models.User, int(user_id))

    import importlib

    for module_name, prefix in BLUEPRINTS:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp, url_prefix=prefix)

    from app.api import bp as api_bp

    csrf.exempt(api_bp)  # bearer-token API: no cookies, so no CSRF

    _register_template_helpers(app)
    _register_error_handlers(app)
    _register_security_headers(app)

    from app.cli import register_cli

    register_cli(app)
    logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)
    return app


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
            "has_endpoint": lambda name: name in app.view_functions,
        }

    @app.template_filter("datefmt")
    def datefmt(value, fmt: str = "%b %d, %Y"):
        return value.strftime(fmt) if value else ""

    @app.template_filter("datetimefmt")
    def datetimefmt(value, fmt: str = "%b %d, %Y %H:%M UTC"):
        return value.strftime(fmt) if value else ""

    @app.template_filter("money")
    def money(value):
        if value is None:
            return ""
        return f"${value:,.2f}" if isinstance(value, float) else f"${value:,}"


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _register_error_handlers(app: Flask) -> None:
    messages = {
        400: "The request could not be understood.",
        401: "Please sign in.",
        403: "You do not have permission to do that.",
        404: "Not found.",
        405: "That method is not allowed here.",
        409: "Someone else changed this first. Reload to see the current state.",
        413: "The upload is too large.",
        422: "Some of what you sent is not valid.",
        429: "Too many attempts. Please wait a minute and try again.",
        500: "Something went wrong on our side. Nothing was saved.",
    }

    def handle(error):
        code = getattr(error, "code", 500) or 500
        if code == 500:
            from app.extensions import db

            db.session.rollback()
        message = messages.get(code, getattr(error, "description", "Error"))
        if isinstance(error, CSRFError):
            message = "Your form expired or is missing its security token. Reload the page and try again."
        if _wants_json():
            return jsonify({"error": message}), code
        return render_template("errors/error.html", code=code, message=message), code

    for code in messages:
        app.register_error_handler(code, handle)
    app.register_error_handler(CSRFError, handle)


def _register_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'",
        )
        return response
