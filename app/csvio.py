"""CSV for people who open it in a spreadsheet: every CSV we write escapes its cells here."""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """Neutralise spreadsheet formulas: a text cell starting with = + - @ (or tab/CR) gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
