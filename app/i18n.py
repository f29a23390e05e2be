"""Languages: what a customer or certificate holder reads is in English or Spanish; staff pages stay English.

Flask-Babel with gettext catalogs in ``translations/<lang>/LC_MESSAGES/messages.po`` (compiled to ``.mo``
by ``make install``). The language of a page is decided once per request by :func:`select_locale`:

1. staff (and the JSON API) always get English;
2. an explicit choice: ``?lang=es`` on any public page (the switch in the page header), remembered in a
   cookie;
3. the customer's preferred language on its record (``Customer.language``) when it is not the default:
   the signed-in customer's, or, on an exemption link page, the customer the link is for
   (:func:`use_customer_language`);
4. the browser's ``Accept-Language`` (an English record is indistinguishable from "never chosen", the
   column's default, so it lets the browser decide);
5. English.

E-mails and SMS are rendered when they are queued, in the recipient customer's language
(:func:`customer_language` + ``flask_babel.force_locale`` in ``app.notify``), so a worker needs no request.

Dates and money are formatted with Babel. Spanish uses the conventions of Spanish in the United States
(``es_US``: "$1,234.50", "2 de diciembre de 2026"), because every customer pays in US dollars.
"""

from __future__ import annotations

import os
from datetime import date, datetime

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal
from flask import Flask, g, has_request_context, request
from flask_babel import Babel, get_locale, gettext, lazy_gettext, refresh

LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# The Babel locale used to format dates, numbers and money for each language.
FORMAT_LOCALES = {"en": "en_US", "es": "es_US"}

babel = Babel()


def init_app(app: Flask) -> None:
    root = os.path.dirname(app.root_path)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", os.path.join(root, "translations"))
    try:
        ensure_compiled(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    except OSError as exc:  # a read-only install: the catalogs compiled at build time are used
        app.logger.warning("Could not compile the message catalogs: %s", exc)
    babel.init_app(app, locale_selector=select_locale)
    # {% trans %} blocks collapse their whitespace, as `pybabel extract` does (babel.cfg: trimmed = true).
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.before_request(_fresh_choice)
    app.after_request(_remember_choice)

    from app.extensions import login

    login.localize_callback = gettext  # "Please sign in to continue." in the visitor's language

    # Globals, not a context processor: macros imported without context use them too.
    app.jinja_env.globals.update(current_language=current_language, language_switch=language_switch,
                                 label_of=label_of, status_word=status_word)

    app.add_template_filter(money_cents, "money_cents")
    app.add_template_filter(number, "number")


def ensure_compiled(directories: str) -> None:
    """Compile any ``.po`` catalog whose ``.mo`` is missing or older (a fresh clone, or an edited catalog).

    ``make install`` compiles them too; this keeps ``flask run`` and the tests right in between.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for directory in directories.split(";"):
        if not os.path.isdir(directory):
            continue
        for lang in os.listdir(directory):
            po = os.path.join(directory, lang, "LC_MESSAGES", "messages.po")
            mo = po[:-3] + ".mo"
            if not os.path.exists(po):
                continue
            if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
                continue
            with open(po, "rb") as f:
                catalog = read_po(f, locale=lang)
            tmp = f"{mo}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                write_mo(f, catalog)
            os.replace(tmp, mo)


def _valid(code) -> str | None:
    code = str(code or "").strip().lower()[:8]
    return code if code in LANGUAGES else None


def customer_language(customer) -> str:
    """The customer's preferred language, English when it has none."""
    return _valid(getattr(customer, "language", None)) or DEFAULT


def _is_staff() -> bool:
    from flask_login import current_user

    return bool(current_user and current_user.is_authenticated and getattr(current_user, "is_staff", False))


def select_locale() -> str:
    """The language of this request (see the module docstring for the order)."""
    if not has_request_context():
        return DEFAULT
    if request.path.startswith("/api/") or _is_staff():
        return DEFAULT
    chosen = _valid(request.args.get(COOKIE)) or _valid(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    preferred = g.get("customer_language")
    if preferred is None:
        from flask_login import current_user

        if current_user and current_user.is_authenticated and getattr(current_user, "customer", None) is not None:
            preferred = _valid(getattr(current_user.customer, "language", None))
    if preferred and preferred != DEFAULT:
        return preferred
    # English is also what a record holds when nobody chose (the column's default), so an English record
    # lets the browser decide.
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT


def use_customer_language(customer) -> None:
    """On a public page about one customer (an exemption link), prefer that customer's language."""
    g.customer_language = _valid(getattr(customer, "language", None))
    refresh()


def _fresh_choice() -> None:
    """Each request decides its own language (an app context shared by several requests, as in tests or
    a worker's inline jobs, must not carry one visitor's language to the next)."""
    g.pop("customer_language", None)
    refresh()


def _remember_choice(response):
    """``?lang=xx`` from the language switch is kept in a cookie, so the next pages and form posts follow it."""
    if request.path.startswith("/api/"):
        return response
    if response.mimetype == "text/html":
        # The language came from these headers: a shared cache must not hand one visitor's page to another.
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    chosen = _valid(request.args.get(COOKIE))
    if chosen and request.cookies.get(COOKIE) != chosen:
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response


def current_language() -> str:
    locale = get_locale()
    return _valid(locale.language if locale is not None else None) or DEFAULT


def language_switch() -> list[dict]:
    """Links to this same page in each other language (only on pages a customer or holder sees)."""
    if not has_request_context() or _is_staff() or request.method != "GET" or request.endpoint is None:
        return []
    here = current_language()
    args = {**request.args.to_dict(), **(request.view_args or {})}  # the path's own values win
    from flask import url_for

    links = []
    for code, name in LANGUAGES.items():
        if code != here:
            args[COOKIE] = code
            links.append({"code": code, "name": name, "url": url_for(request.endpoint, **args)})
    return links


def _format_locale() -> str:
    return FORMAT_LOCALES[current_language()]


def format_day(value: date | datetime | None, english: str = "%b %d, %Y") -> str:
    """A date as people write it in the current language ("Dec 02, 2026" / "2 de diciembre de 2026")."""
    if not value:
        return ""
    if current_language() == DEFAULT:
        return value.strftime(english)
    return format_date(value, "long", locale=_format_locale())


def format_moment(value: datetime | None, english: str = "%b %d, %Y %H:%M UTC") -> str:
    """A UTC date and time in the current language ("Dec 02, 2026 14:05 UTC" / "2 de diciembre de 2026, 14:05 UTC")."""
    if not value:
        return ""
    if current_language() == DEFAULT:
        return value.strftime(english)
    return (f"{format_date(value, 'long', locale=_format_locale())}, "
            f"{format_time(value, 'HH:mm', locale=_format_locale())} UTC")


def money_cents(cents: int | None) -> str:
    """Cents as US dollars in the current language's conventions."""
    if cents is None:
        return ""
    return format_currency(cents / 100, "USD", locale=_format_locale())


def number(value) -> str:
    return "" if value is None else format_decimal(value, locale=_format_locale())


# Strings handed to libraries without a gettext call of ours, listed so `pybabel extract` finds them.
_EXTRA = (lazy_gettext("Please sign in to continue."),)

# Words the product shows for its enum values, as catalog entries (the enums keep their English labels
# for staff pages, the API and the certificate PDF, which stay English).
_LABELS = {
    "request_type": {
        "coi": lazy_gettext("Certificate of insurance"),
        "coi_wos": lazy_gettext("Certificate of insurance with WOS"),
        "poi": lazy_gettext("Proof of insurance"),
    },
    "request_status": {
        "new": lazy_gettext("new"),
        "in_progress": lazy_gettext("in progress"),
        "completed": lazy_gettext("completed"),
        "rejected": lazy_gettext("rejected"),
        "cancelled": lazy_gettext("cancelled"),
    },
    "exemption_reason": {
        "resale": lazy_gettext("Resale"),
        "government": lazy_gettext("Government"),
        "non_profit": lazy_gettext("Non-profit"),
        "manufacturing": lazy_gettext("Manufacturing"),
        "agriculture": lazy_gettext("Agriculture"),
        "direct_pay": lazy_gettext("Direct pay"),
        "other": lazy_gettext("Other"),
    },
    "form_type": {
        "uniform_multistate": lazy_gettext("Uniform multistate"),
        "streamlined": lazy_gettext("Streamlined"),
        "state_specific": lazy_gettext("State-specific"),
    },
    "payment_method": {
        "card": lazy_gettext("card"),
        "amex": lazy_gettext("Amex"),
        "ach": lazy_gettext("ACH"),
        "wire": lazy_gettext("wire"),
    },
}
_ENUM_KINDS = {
    "RequestType": "request_type", "RequestStatus": "request_status", "ExemptionReason": "exemption_reason",
    "ExemptionFormType": "form_type", "PaymentMethod": "payment_method",
}


def lazy_label(value):
    """The catalog entry for an enum value (a lazy string: forms built at import time translate it per
    request); the enum's own label when it has none."""
    kind = _ENUM_KINDS.get(type(value).__name__)
    text = _LABELS.get(kind, {}).get(getattr(value, "value", value)) if kind else None
    if text is not None:
        return text
    label = getattr(value, "label", None)
    return label if label is not None else str(value)


def status_word(value) -> str:
    """A status as a word ("in progress"): translated when the catalog has it."""
    if _ENUM_KINDS.get(type(value).__name__):
        return label_of(value)
    return str(getattr(value, "value", value)).replace("_", " ")


def label_of(value) -> str:
    """The word for an enum value in the current language (its English label when it has no entry)."""
    return str(lazy_label(value))
