"""Shared input rules: US states, ZIP codes, phone numbers, e-mail addresses."""

from __future__ import annotations

import re

from flask_babel import gettext

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana",
    "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
STATE_CHOICES = sorted(US_STATES.items(), key=lambda kv: kv[1])

ZIP_RE = re.compile(r"^\d{5}(-\d{4})?$")
PHONE_DIGITS_RE = re.compile(r"\D")


class InvalidInput(ValueError):
    """A value a user typed is not acceptable; the message is safe to show."""


# -- numbers and ids ---------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; a larger number is simply no row
_ASCII_INT_RE = re.compile(r"^[+-]?[0-9]{1,18}$")


def parse_int(value, *, low: int | None = None, high: int | None = None, default: int | None = None) -> int | None:
    """The one integer parser for query strings, form fields and CSV cells.

    ASCII digits only (``"²".isdigit()`` is true but ``int("²")`` fails; ``"١٢"`` is Arabic-Indic),
    at most 18 of them, within ``low..high``. Anything else gives ``default`` (``None`` unless told),
    so a hostile or mistyped number is "not given" / "not found", never a 500.
    """
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        number = value
    else:
        text = (value or "").strip() if isinstance(value, str) else ""
        if not _ASCII_INT_RE.match(text):
            return default
        number = int(text)
    if (low is not None and number < low) or (high is not None and number > high):
        return default
    return number


def parse_id(value) -> int | None:
    """A database id from user input: 1..2**31-1 in ASCII digits, else None (treat as not found)."""
    return parse_int(value, low=1, high=MAX_ID)


def parse_page(value, *, last: int = 100_000) -> int:
    """A page number: 1 when missing or nonsense, never past ``last``."""
    return min(parse_int(value, low=1, default=1), last)


# -- text --------------------------------------------------------------------------------------

# Bidirectional embedding/override/isolate controls: U+202E makes "gpj.exe" read "exe.jpg" in pages,
# e-mails and PDFs. They have no place in names and addresses, so they are dropped on save.
BIDI_CONTROLS_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")
# C0 controls other than tab, line feed and carriage return (NUL breaks PostgreSQL text columns).
CONTROL_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_bidi(value: str | None) -> str | None:
    """The text without bidi override/isolate characters (None stays None)."""
    return BIDI_CONTROLS_RE.sub("", value) if isinstance(value, str) else value


def has_control_chars(value: str) -> bool:
    return bool(CONTROL_CHARS_RE.search(value))


def normalize_state(value: str | None) -> str:
    code = (value or "").strip().upper()
    if code not in US_STATES:
        raise InvalidInput(gettext("Use a two-letter US state code (or DC)."))
    return code


def normalize_zip(value: str | None) -> str:
    text = (value or "").strip()
    if not ZIP_RE.match(text):
        raise InvalidInput(gettext("Use a 5-digit ZIP code or ZIP+4 (12345 or 12345-6789)."))
    return text


def normalize_phone(value: str | None) -> str:
    digits = PHONE_DIGITS_RE.sub("", value or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise InvalidInput(gettext("Use a 10-digit US phone number, e.g. (512) 555-0100."))
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def normalize_email(value: str | None) -> str:
    from email_validator import EmailNotValidError, validate_email

    text = (value or "").strip()
    if not text:
        raise InvalidInput(gettext("An e-mail address is required."))
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(gettext("Not a valid e-mail address: %(why)s", why=exc)) from exc
