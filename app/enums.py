"""Status enums and the transition table of every lifecycle.

Stored with ``enum_column`` below: a VARCHAR holding the lowercase value plus a CHECK constraint.
"""

from enum import StrEnum

import sqlalchemy as sa


def enum_column(enum_cls: type[StrEnum], length: int = 32) -> sa.Enum:
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=length,
        name=enum_cls.__name__.lower(),
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    PROCESSOR = "processor"
    ADVISOR = "advisor"
    CUSTOMER = "customer"

    @property
    def is_staff(self) -> bool:
        return self is not Role.CUSTOMER


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"


class PaymentMethod(StrEnum):
    CARD = "card"
    AMEX = "amex"
    ACH = "ach"
    WIRE = "wire"

    @property
    def charged_up_front(self) -> bool:
        return self in (PaymentMethod.CARD, PaymentMethod.AMEX)


class CoverageLine(StrEnum):
    GENERAL_LIABILITY = "general_liability"
    AUTOMOBILE = "automobile"
    UMBRELLA = "umbrella"
    WORKERS_COMP = "workers_comp"
    OTHER = "other"


class Language(StrEnum):
    """A customer's preferred language for customer-facing pages and messages."""

    EN = "en"
    ES = "es"

    @property
    def label(self) -> str:
        return {"en": "English", "es": "Spanish"}[self.value]


class PolicyStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class EndorsementKind(StrEnum):
    ADDITIONAL_INSURED = "additional_insured"
    WAIVER_OF_SUBROGATION = "waiver_of_subrogation"
    PRIMARY_NONCONTRIBUTORY = "primary_noncontributory"
    NOTICE_OF_CANCELLATION = "notice_of_cancellation"

    @property
    def label(self) -> str:
        return {"additional_insured": "Additional insured", "waiver_of_subrogation": "Waiver of subrogation",
                "primary_noncontributory": "Primary & non-contributory",
                "notice_of_cancellation": "Notice of cancellation"}[self.value]


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class MessageStatus(StrEnum):
    PENDING = "pending"      # waiting for the delivery job
    SENDING = "sending"      # claimed by one delivery job
    SENT = "sent"            # handed to the SMTP server / SMS gateway
    HELD = "held"            # no transport configured: kept in the outbox only
    FAILED = "failed"        # gave up after repeated errors


class InvalidTransition(Exception):
    """A status change the lifecycle does not allow (often: somebody else acted first)."""

    def __init__(self, current, target):
        super().__init__(f"cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(table: dict, current, target) -> bool:
    return target in table.get(current, frozenset())


class RequestType(StrEnum):
    COI = "coi"
    COI_WOS = "coi_wos"
    POI = "poi"

    @property
    def label(self) -> str:
        return {"coi": "Certificate of insurance", "coi_wos": "Certificate of insurance with WOS",
                "poi": "Proof of insurance"}[self.value]

    @property
    def short_label(self) -> str:
        """The queue's Type column: COI, WOS or POI."""
        return {"coi": "COI", "coi_wos": "WOS", "poi": "POI"}[self.value]

    @property
    def is_coi(self) -> bool:
        """A certificate of insurance, with or without waiver of subrogation (not a proof of insurance)."""
        return self in (RequestType.COI, RequestType.COI_WOS)

    @property
    def has_waiver(self) -> bool:
        """Carries a waiver of subrogation (a fee, a project, always processed by staff)."""
        return self is RequestType.COI_WOS

    @property
    def relabel_target(self) -> "RequestType | None":
        """What staff may relabel a request of this type as: COI <-> WOS; a proof of insurance stays one."""
        return {"coi": RequestType.COI_WOS, "coi_wos": RequestType.COI}.get(self.value)


class RequestSource(StrEnum):
    PORTAL = "portal"
    API = "api"
    INTERNAL = "internal"


class RequestStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        """New or in progress: staff can still act on the request (the queue's default view)."""
        return self in OPEN_REQUEST_STATUSES


OPEN_REQUEST_STATUSES = (RequestStatus.NEW, RequestStatus.IN_PROGRESS)


CERTIFICATE_REQUEST_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.NEW: frozenset({RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.REJECTED,
                                  RequestStatus.CANCELLED}),
    RequestStatus.IN_PROGRESS: frozenset({RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.CANCELLED}),
    RequestStatus.COMPLETED: frozenset(),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}


class AutomationDecision(StrEnum):
    """A COI request's automation decision, a sub-state of its own (``AUTOMATION_DECISION_TRANSITIONS``)."""

    UNDECIDED = "undecided"  # the automatic check has not looked at it yet
    MANUAL = "manual"        # left for staff; ``manual_reason`` says why
    AUTO = "auto"            # issued and delivered without staff


AUTOMATION_DECISION_TRANSITIONS: dict[AutomationDecision, frozenset[AutomationDecision]] = {
    AutomationDecision.UNDECIDED: frozenset({AutomationDecision.MANUAL, AutomationDecision.AUTO}),
    AutomationDecision.MANUAL: frozenset(),
    AutomationDecision.AUTO: frozenset(),
}


class IssueState(StrEnum):
    """A COI request's issuing, a sub-state of its own (``ISSUE_TRANSITIONS``)."""

    NONE = "none"        # nothing submitted for issuing yet
    PENDING = "pending"  # staff submitted the certificate; waiting for the PDF job
    FAILED = "failed"    # the PDF job could not issue it; ``issue_error`` says why, staff may try again
    ISSUED = "issued"    # the certificate was issued (the request is completed)


ISSUE_TRANSITIONS: dict[IssueState, frozenset[IssueState]] = {
    # none -> issued: the automatic path issues at once, without waiting for the PDF job
    IssueState.NONE: frozenset({IssueState.PENDING, IssueState.ISSUED}),
    IssueState.PENDING: frozenset({IssueState.ISSUED, IssueState.FAILED}),
    IssueState.FAILED: frozenset({IssueState.PENDING}),
    IssueState.ISSUED: frozenset(),
}


class PaymentStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"


class CertificateSource(StrEnum):
    GENERATED = "generated"
    UPLOADED = "uploaded"


class PortalUserState(StrEnum):
    """What a customer's Users tab shows for one portal user (derived, not stored)."""

    ACTIVE = "active"      # has a password
    INVITED = "invited"    # invitation link still live
    EXPIRED = "expired"    # invitation link expired: re-invite
    DISABLED = "disabled"


# -- exemption certificates ----------------------------------------------------------------------

class ExemptionRequestStatus(StrEnum):
    SENT = "sent"            # link e-mailed, not opened yet
    OPENED = "opened"        # the customer viewed the link
    COMPLETED = "completed"  # the customer submitted a certificate
    EXPIRED = "expired"      # the link's time ran out
    CANCELLED = "cancelled"  # withdrawn by staff

    @property
    def is_pending(self) -> bool:
        """No certificate yet and not withdrawn: staff can resend the link or cancel the request."""
        return self in PENDING_EXEMPTION_REQUEST_STATUSES


PENDING_EXEMPTION_REQUEST_STATUSES = (ExemptionRequestStatus.SENT, ExemptionRequestStatus.OPENED,
                                      ExemptionRequestStatus.EXPIRED)


class ExemptionCertificateStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    ACTIVE = "active"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ExemptionReason(StrEnum):
    RESALE = "resale"
    GOVERNMENT = "government"
    NON_PROFIT = "non_profit"
    MANUFACTURING = "manufacturing"
    AGRICULTURE = "agriculture"
    DIRECT_PAY = "direct_pay"
    OTHER = "other"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").replace("non profit", "non-profit").capitalize()


class PurchaseType(StrEnum):
    BLANKET = "blanket"
    SINGLE = "single"


class ExemptionFormType(StrEnum):
    UNIFORM_MULTISTATE = "uniform_multistate"
    STREAMLINED = "streamlined"
    STATE_SPECIFIC = "state_specific"

    @property
    def label(self) -> str:
        return {"uniform_multistate": "Uniform multistate", "streamlined": "Streamlined",
                "state_specific": "State-specific"}[self.value]


class SendRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class ReissueStatus(StrEnum):
    """A re-issue run (certificates re-issued as new revisions after a renewal, in one job)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # its worker kept dying: given up after its attempts


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # gave up after the retry schedule (about a day)


class AuditPackStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# -- holders: CSV import and mass certificate generation ------------------------------------------

class ImportKind(StrEnum):
    HOLDERS = "holders"  # pass 1: certificate holders, attached to no customer
    LINKS = "links"      # pass 2: customer ID <-> holder links with their flags
    CUSTOMERS = "customers"  # the business's customers, keyed by external customer number
    POLICIES = "policies"    # policies on file with their endorsements, keyed by number + insurer + line

    @property
    def label(self) -> str:
        return {"holders": "Pass 1: certificate holders", "links": "Pass 2: customer links",
                "customers": "Customers", "policies": "Policies and endorsements"}[self.value]

    @property
    def is_holder_kind(self) -> bool:
        return self in (ImportKind.HOLDERS, ImportKind.LINKS)


class ImportStatus(StrEnum):
    VALIDATING = "validating"  # the file is being checked row by row (nothing written yet)
    PREVIEW = "preview"        # checked: waiting for a person to confirm
    IMPORTING = "importing"    # confirmed: rows are being written
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


IMPORT_TRANSITIONS: dict[ImportStatus, frozenset[ImportStatus]] = {
    ImportStatus.VALIDATING: frozenset({ImportStatus.PREVIEW, ImportStatus.FAILED, ImportStatus.CANCELLED}),
    ImportStatus.PREVIEW: frozenset({ImportStatus.IMPORTING, ImportStatus.CANCELLED}),
    ImportStatus.IMPORTING: frozenset({ImportStatus.DONE, ImportStatus.FAILED}),
    ImportStatus.DONE: frozenset(),
    ImportStatus.FAILED: frozenset(),
    ImportStatus.CANCELLED: frozenset(),
}


class GenerationMode(StrEnum):
    ZIP = "zip"        # one PDF per holder, in a ZIP archive
    MERGED = "merged"  # one combined PDF

    @property
    def label(self) -> str:
        return {"zip": "Individual PDFs (ZIP)", "merged": "One combined PDF"}[self.value]


class GenerationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"  # the file was removed after GENERATED_FILE_DAYS


GENERATION_TRANSITIONS: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    GenerationStatus.QUEUED: frozenset({GenerationStatus.RUNNING, GenerationStatus.FAILED}),
    GenerationStatus.RUNNING: frozenset({GenerationStatus.DONE, GenerationStatus.FAILED}),
    GenerationStatus.DONE: frozenset({GenerationStatus.EXPIRED}),
    GenerationStatus.FAILED: frozenset(),
    GenerationStatus.EXPIRED: frozenset(),
}
