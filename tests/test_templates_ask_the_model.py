"""Templates ask the model; they never restate a status or a type as a string literal.

A rule such as "a request is open while it is new or in progress" lives once, on the model or its
enum (``req.is_open``, ``req.status.is_open``, ``req.type.is_coi``, ``req.issue_state``...). A template
that writes ``req.status.value in ("new", "in_progress")`` keeps a second copy that silently goes stale
when the rule changes. This test reads every template under templates/ and fails on such a copy.

What counts as a violation, inside ``{{ ... }}`` and ``{% ... %}`` only (page text is never read):

* the subject is a status or a type: an attribute path ending in ``.status``, ``.type``, ``.kind``,
  ``.state`` or ``.source`` (with or without a trailing ``.value``), any ``<something>.value`` (an
  enum's raw value), or a bare variable named ``status``, ``state`` or ``kind``;
* it is compared with a string literal: ``subject == "x"``, ``subject != 'x'``, ``"x" == subject``,
  or ``subject in ("x", ...)`` / ``subject not in ["x", ...]``;
* or a filter compares the attribute to a literal:
  ``selectattr("status", "equalto", "approved")`` (also ``rejectattr``);
* or a status is tested against a list of states, even enum members:
  ``run.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING)``. A set of states is a rule
  ("working", "finished", "pending"): it gets a name on the model or the enum (``run.is_working``).

Comparing with one enum member is fine (``req.status == enums.RequestStatus.NEW``): the name is
checked by Python, not retyped. Not covered: variables with other names (``mode``, ``tab``, ``action``) that hold
a page's own choice rather than a model's state. ``ALLOWED`` lists the only exceptions, with the reason.
"""

import re

import pytest

from tests.paths import REPO

TEMPLATES = REPO / "templates"

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_LITERAL = r"""(?:"[^"]*"|'[^']*')"""
_SUBJECT = (r"""(?:[A-Za-z_][\w.]*\.(?:status|type|kind|state|source)(?:\.value)?"""
            r"""|[A-Za-z_][\w.]*\.value"""
            r"""|(?<![\w.])(?:status|state|kind)(?:\.value)?)(?![\w(])""")
_VIOLATIONS = re.compile(
    rf"""{_SUBJECT}\s*(?:==|!=)\s*{_LITERAL}"""
    rf"""|{_LITERAL}\s*(?:==|!=)\s*{_SUBJECT}"""
    rf"""|{_SUBJECT}\s+(?:not\s+)?in\s*[(\[]\s*{_LITERAL}"""
    r"""|[A-Za-z_][\w.]*\.status(?:\.value)?\s+(?:not\s+)?in\s*[(\[]"""
    rf"""|(?:select|reject)attr\(\s*["'](?:status|type|kind|state|source)["']\s*,\s*{_LITERAL}\s*,\s*{_LITERAL}"""
)

# (template, the exact matched text): why it is not a model's status or type.
ALLOWED = {
    ("_macros.html", 'f.type == "BooleanField"'): "a WTForms field's class name, not a model's type",
    ("_error_summary.html", 'f.type not in ("CSRFTokenField"'): "WTForms field class names, not a model's type",
}


def violations(source: str) -> list[str]:
    return [m.group(0) for block in _JINJA.findall(source) for m in _VIOLATIONS.finditer(block)]


@pytest.mark.parametrize("snippet", [
    '{% set open = req.status.value in ("new", "in_progress") %}',
    "{% if req.status.value == 'completed' %}",
    '{{ "WOS" if r.type.value == "coi_wos" else "COI" }}',
    '{% if d.kind == "coi_wos" %}',
    '{% if kind.value == "customers" %}',
    '{% if state == "active" %}',
    '{% if req.source != "staff" %}',
    '{% if "new" == req.status %}',
    '{% if run.status not in ["done", "failed"] %}',
    '{% set paid = r.payments|selectattr("status", "equalto", "approved")|list %}',
    '{% if x.line.value == "other" %}',
    "{% set pending = run.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING) %}",
    "{% if req.status not in [enums.RequestStatus.NEW] %}",
])
def test_the_check_catches_a_restated_rule(snippet):
    assert violations(snippet) != []


@pytest.mark.parametrize("snippet", [
    "{% if req.is_open %}",
    "{% if req.status == enums.RequestStatus.NEW %}",
    "{% if run.is_finished %}",
    '{% for key, label, kind in [("policy_number", "Policy number", "text")] %}',
    '{{ status_badge(req.status.value) }}',
    '<p>The status == "new" here is page text, not a comparison.</p>',
    '{% if mode == "renew" %}',
    '{% if line and line.value == l.value %}',
    '{% set items = r.payments|selectattr("is_approved")|list %}',
])
def test_the_check_leaves_model_questions_alone(snippet):
    assert violations(snippet) == []


def test_no_template_compares_a_status_or_type_to_a_string():
    templates = sorted(TEMPLATES.rglob("*.html")) + sorted(TEMPLATES.rglob("*.txt"))
    assert len(templates) > 100  # the scan reads the real templates folder
    found = []
    for path in templates:
        name = str(path.relative_to(TEMPLATES))
        for text in violations(path.read_text(encoding="utf-8")):
            if (name, text) not in ALLOWED:
                found.append(f"{name}: {text}")
    assert found == []
