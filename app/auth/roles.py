"""The role table of DESIGN.md, as data. Every route declares one of these permissions."""

from app.enums import Role

A, R, P, V, C = Role.ADMIN, Role.REVIEWER, Role.PROCESSOR, Role.ADVISOR, Role.CUSTOMER

PERMISSIONS: dict[str, frozenset[Role]] = {
    # staff dashboards and customer pages (advisors read only)
    "view_dashboard": frozenset({A, R, P, V}),
    # the COI / WOS / POI processing queue
    "process_queue": frozenset({A, R, P}),
    # submit a COI / WOS request on a customer's behalf (customers: their own, via the portal)
    "submit_coi": frozenset({A, R, V, C}),
    # send, resend, cancel exemption requests
    "manage_exemption_requests": frozenset({A, R}),
    # approve, edit & approve, reject exemption submissions
    "review_exemptions": frozenset({A, R}),
    # holder import, mass generation, resend certificates / POI (customers: POI + their own)
    "manage_holders": frozenset({A, R}),
    "resend_certificates": frozenset({A, R, C}),
    # customers, policies & endorsements, customer users, card on file: create / edit (others read)
    "manage_customers": frozenset({A, R}),
    # programs and insurers
    "manage_programs": frozenset({A}),
    # configuration: users, rejection reasons, fees, outbox
    "configure": frozenset({A}),
    # the customer self-service portal
    "portal": frozenset({C}),
}

# Access markers that are not role sets.
PUBLIC = "public"              # anyone, no login (login page, request links)
AUTHENTICATED = "authenticated"  # any logged-in user (logout, home redirect)


def allowed(permission: str, role: Role | None) -> bool:
    if permission == PUBLIC:
        return True
    if role is None:
        return False
    if permission == AUTHENTICATED:
        return True
    return role in PERMISSIONS[permission]
