"""All models, one module per aggregate, re-exported here."""

from app.models.accounts import RequestDraft, UserInvitation
from app.models.activity import Activity
from app.models.customers import Customer, Program
from app.models.exemptions import (
    AuditPack,
    CertificateJurisdiction,
    ExemptionCertificate,
    ExemptionRequest,
    ExemptionRuleOverride,
    ExemptionSendRun,
)
from app.models.holders import (
    CustomerHolder,
    GenerationRun,
    GenerationRunHolder,
    Holder,
    ImportRun,
    SentCertificate,
)
from app.models.insurance import CertificateRequest, IssuedCertificate, Payment, ReissueRun, RejectionReason
from app.models.outbox import OutboxMessage
from app.models.payments_sandbox import SandboxCharge, SandboxRefund
from app.models.policies import Endorsement, Insurer, Policy
from app.models.review_drafts import ReviewDraft
from app.models.settings import Setting
from app.models.users import ApiToken, User
from app.models.versions import DataVersion
from app.models.webhooks import Event, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Activity",
    "AuditPack",
    "ApiToken",
    "CertificateRequest",
    "Customer",
    "CustomerHolder",
    "DataVersion",
    "Endorsement",
    "Holder",
    "Insurer",
    "IssuedCertificate",
    "Payment",
    "RejectionReason",
    "ReissueRun",
    "OutboxMessage",
    "Policy",
    "SandboxCharge",
    "SandboxRefund",
    "Program",
    "Setting",
    "User",
    "UserInvitation",
    "RequestDraft",
    "ReviewDraft",
    "CertificateJurisdiction",
    "ExemptionCertificate",
    "ExemptionRequest",
    "ExemptionRuleOverride",
    "ExemptionSendRun",
    "Event",
    "WebhookDelivery",
    "WebhookEndpoint",
    "GenerationRun",
    "GenerationRunHolder",
    "ImportRun",
    "SentCertificate",
]
