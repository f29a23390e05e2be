"""The card form (portal and staff share it). The gateway checks the card; its per-field messages are
attached to these fields."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length


class CardForm(FlaskForm):
    number = StringField(_l("Card number"), validators=[Length(max=40)],
                         render_kw={"autocomplete": "cc-number", "inputmode": "numeric", "maxlength": 40,
                                    "placeholder": "4242 4242 4242 4242"})
    exp_month = StringField(_l("Expiry month"), validators=[Length(max=4)],
                            render_kw={"autocomplete": "cc-exp-month", "inputmode": "numeric", "maxlength": 2,
                                       "placeholder": _l("MM"), "size": 3})
    exp_year = StringField(_l("Expiry year"), validators=[Length(max=4)],
                           render_kw={"autocomplete": "cc-exp-year", "inputmode": "numeric", "maxlength": 4,
                                      "placeholder": _l("YYYY"), "size": 5})
    cvc = StringField(_l("Security code"), validators=[Length(max=4)],
                      render_kw={"autocomplete": "cc-csc", "inputmode": "numeric", "maxlength": 4, "size": 5})
    retry = HiddenField()

    def apply_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            field = self._fields.get(name) or self.number
            field.errors = [*field.errors, message]
