"""The questions pages, the API and the jobs ask a COI request, answered once on the model and its enums."""

from datetime import UTC, datetime

import pytest

from app.enums import AutomationDecision, ExemptionRequestStatus, IssueState, PaymentStatus, RequestStatus, RequestType
from app.models import CertificateRequest, Payment

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("status, is_open", [
    (RequestStatus.NEW, True), (RequestStatus.IN_PROGRESS, True), (RequestStatus.COMPLETED, False),
    (RequestStatus.REJECTED, False), (RequestStatus.CANCELLED, False),
])
def test_open_means_new_or_in_progress(status, is_open):
    assert status.is_open is is_open
    assert CertificateRequest(status=status).is_open is is_open


@pytest.mark.parametrize("status, issuing, issuing_now, failed_now", [
    (RequestStatus.NEW, IssueState.PENDING, True, False),
    (RequestStatus.IN_PROGRESS, IssueState.PENDING, True, False),
    (RequestStatus.IN_PROGRESS, IssueState.FAILED, False, True),
    (RequestStatus.NEW, IssueState.NONE, False, False),
    (RequestStatus.COMPLETED, IssueState.ISSUED, False, False),
    (RequestStatus.CANCELLED, IssueState.PENDING, False, False),  # a closed request is not being issued
])
def test_issuing_sub_state(status, issuing, issuing_now, failed_now):
    req = CertificateRequest(status=status, issuing=issuing, issue_requested_at=NOW)
    assert req.issue_state == issuing.value
    assert req.is_issuing is issuing_now
    assert req.issue_failed is failed_now


def test_a_failure_on_a_closed_request_offers_no_retry():
    req = CertificateRequest(status=RequestStatus.REJECTED, issuing=IssueState.FAILED, issue_error="PDF engine down")
    assert req.issue_failed is False


@pytest.mark.parametrize("decision, needs_manual, undecided", [
    (AutomationDecision.UNDECIDED, True, True), (AutomationDecision.MANUAL, True, False),
    (AutomationDecision.AUTO, False, False),
])
def test_automation_decision_sub_state(decision, needs_manual, undecided):
    req = CertificateRequest(decision=decision)
    assert (req.needs_manual, req.is_undecided) == (needs_manual, undecided)


@pytest.mark.parametrize("kind, short, is_coi, waiver, relabel", [
    (RequestType.COI, "COI", True, False, RequestType.COI_WOS),
    (RequestType.COI_WOS, "WOS", True, True, RequestType.COI),
    (RequestType.POI, "POI", False, False, None),
])
def test_request_type_questions(kind, short, is_coi, waiver, relabel):
    assert (kind.short_label, kind.is_coi, kind.has_waiver, kind.relabel_target) == (short, is_coi, waiver, relabel)


def test_card_payment_is_the_approved_charge():
    declined = Payment(status=PaymentStatus.DECLINED, amount_cents=2575, idempotency_key="a")
    approved = Payment(status=PaymentStatus.APPROVED, amount_cents=2575, idempotency_key="b")
    assert CertificateRequest(payments=[declined]).card_payment is None
    assert CertificateRequest(payments=[declined, approved]).card_payment is approved


@pytest.mark.parametrize("status", list(ExemptionRequestStatus))
def test_an_exemption_request_is_pending_exactly_while_its_link_can_be_resent(status):
    """The request pages offer resend and cancel while pending; the transition table agrees."""
    from app.lifecycle import EXEMPTION_REQUEST_TRANSITIONS

    can_resend = ExemptionRequestStatus.SENT in EXEMPTION_REQUEST_TRANSITIONS[status]
    assert status.is_pending is can_resend
    assert status.is_pending is (status in (ExemptionRequestStatus.SENT, ExemptionRequestStatus.OPENED,
                                            ExemptionRequestStatus.EXPIRED))
