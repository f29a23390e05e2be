from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Sign in")


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for button-only POSTs."""


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField("Repeat the new password", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Set password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField("Repeat the new password", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Change password")


class InviteUserForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Length(max=120)])
    submit = SubmitField("Send invitation")
