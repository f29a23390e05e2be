"""Finding 6: hostile values in the query and form parameters of every route never answer 5xx.

Property-based (hypothesis): for every rule in the live URL map, GET and POST (whichever it takes),
as an anonymous visitor, an admin and a customer user, parameters named like the ones the app reads
get huge and negative integers, non-ASCII digits ("²", Arabic-Indic), NUL and control characters,
10,000-character strings and bidi overrides. Runs on SQLite and on PostgreSQL (TEST_DATABASE_URL).
A few examples per route keep it well under a minute.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.enums import Role
from tests.factories import PASSWORD

APP_DIR = Path(__file__).resolve().parents[2] / "app"

# The parameter names the app reads: request.args/form/values.get("…") and form fields, plus a few
# read through loops (filters, sort order).
_READ = re.compile(r"request\.(?:args|form|values)\.get(?:list)?\(\s*\"([^\"]+)\"")
_FIELD = re.compile(r"^\s+(\w+)\s*=\s*\w*Field\(", re.M)
_EXTRA = {"customer", "customer_id", "date_from", "date_to", "sort", "dir", "id", "page", "per_page", "q",
          "version", "reason_id", "year", "holder_id", "policy_id", "program_id", "insurer_id", "limit"}


def _names() -> list[str]:
    names = set(_EXTRA)
    for path in APP_DIR.rglob("*.py"):
        text = path.read_text()
        names.update(_READ.findall(text))
        names.update(_FIELD.findall(text))
    return sorted(names - {"csrf_token"})


NAMES = _names()
HOSTILE = [
    "99999999999999999999", "-99999999999999999999", "2147483648", "-2147483649", "-1", "0",
    "²", "١٢٣", "1e9", "NaN", "1.5", "9" * 25, "", " ", "a\x00b", "\x00", "\x07\x1b[31m",
    "x" * 10_000, "\u202eevil\u202c", "\u2066x\u2069", "../../etc/passwd", "<script>alert(1)</script>",
    "0001-01-01", "9999-12-31", "2026-02-30", "' OR 1=1 --", "%00", "true",
]
hostile_value = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=40),
)
hostile_params = st.dictionaries(st.sampled_from(NAMES), hostile_value, max_size=5)

# Endpoints that end the signed-in session or API tokens the loop uses (each has its own tests).
SKIP = {"auth.logout", "admin.reset_user_password", "admin.set_user_enabled", "admin.revoke_api_key",
        "auth.change_password", "static"}


def _path(rule, ids: dict[str, int]) -> str:
    url = rule.rule
    for converter, name in re.findall(r"<(?:([^:>(]+)(?:\([^)]*\))?:)?([^>]+)>", rule.rule):
        value = ids.get(name, 1) if converter in ("int", "id") else "not-a-real-token"
        url = re.sub(r"<[^>]*\b" + re.escape(name) + ">", str(value), url, count=1)
    return url


def _clients(app, make):
    from app.cli import create_api_token
    from app.extensions import db

    own = make.customer(name="Own Customer")
    admin = make.user(Role.ADMIN)
    customer_user = make.user(Role.CUSTOMER, customer=own)
    tokens = {"admin": create_api_token(admin), "customer": create_api_token(customer_user)}
    # rows behind the sample id 1 of the paths, so requests get past "not found" to the parameters
    make.queue_request(customer=own)
    make.exemption_request(customer=own)
    make.exemption_certificate(customer=own)
    db.session.commit()
    clients = {"anonymous": app.test_client(), "admin": app.test_client(), "customer": app.test_client()}
    for role, user in (("admin", admin), ("customer", customer_user)):
        response = clients[role].post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 303
    return clients, tokens, {"customer_id": own.id}


def _probe(url, method, client, headers, role, failures):
    @settings(max_examples=2, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(params=hostile_params)
    @example(params={name: "²" for name in NAMES})
    @example(params={name: "99999999999999999999" for name in NAMES})
    @example(params={name: "a\x00b\u202e" for name in NAMES})
    def probe(params):
        try:
            if method == "GET":
                response = client.get(url, query_string=params, headers=headers)
            elif url.startswith("/api/"):
                response = client.post(url, json=params, query_string=params, headers=headers)
            else:
                response = client.post(url, data=params, query_string=params, headers=headers)
            status = response.status_code
        except Exception as exc:  # noqa: BLE001 - the test app propagates what would be a 500
            from app.extensions import db

            db.session.rollback()
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/app/" in f.filename]
            where = f"{frames[-1].filename.rsplit('/app/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
            status = f"500 ({type(exc).__name__} at app/{where})"
        if not isinstance(status, int) or status >= 500:
            failures.append(f"{method} {url} as {role}: {status}")

    return probe


def test_no_route_answers_5xx_to_hostile_parameters(app, make):
    app.config.update(LOGIN_RATE_LIMIT="100000 per minute", LOGIN_ACCOUNT_RATE_LIMIT="100000 per minute",
                      LINK_RATE_LIMIT="100000 per minute", RESEND_RATE_LIMIT="100000 per minute")
    clients, tokens, ids = _clients(app, make)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in SKIP]
    failures: list[str] = []

    for rule in sorted(rules, key=lambda r: r.rule):
        url = _path(rule, ids)
        methods = [m for m in ("GET", "POST") if m in rule.methods]
        for method in methods:
            for role, client in clients.items():
                headers = {"Authorization": f"Bearer {tokens[role]}"} if rule.rule.startswith("/api/") and \
                    role in tokens else {}

                _probe(url, method, client, headers, role, failures)()
    assert failures == [], "\n".join(sorted(set(failures)))
