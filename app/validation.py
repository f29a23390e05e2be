"""Shared input rules: US states, ZIP codes, phone numbers, e-mail addresses, dates."""

from __future__ import annotations

import re
from datetime import date

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


def normalize_state(value: str | None) -> str:
    code = (value or "").strip().upper()
    if code not in US_STATES:
        raise InvalidInput("Use a two-letter US state code (or DC).")
    return code


def normalize_zip(value: str | None) -> str:
    text = (value or "").strip()
    if not ZIP_RE.match(text):
        raise InvalidInput("Use a 5-digit ZIP code or ZIP+4 (12345 or 12345-6789).")
    return text


def normalize_phone(value: str | None) -> str:
    digits = PHONE_DIGITS_RE.sub("", value or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise InvalidInput("Use a 10-digit US phone number, e.g. (512) 555-0100.")
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def normalize_email(value: str | None) -> str:
    from email_validator import EmailNotValidError, validate_email

    text = (value or "").strip()
    if not text:
        raise InvalidInput("An e-mail address is required.")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"Not a valid e-mail address: {exc}") from exc


def parse_date(value: str | None, *, field: str = "date") -> date:
    text = (value or "").strip()
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"The {field} must be a date in the form YYYY-MM-DD.") from exc
