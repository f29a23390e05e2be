"""Mass generation through a real RQ worker: ZIP and merged PDF read back, progress, sent history, e-mail,
retention sweep and re-enqueueing what a dead worker left behind."""

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.customers import generation, holders
from app.enums import GenerationMode, GenerationStatus, Role
from app.extensions import db
from app.models import GenerationRun, OutboxMessage, SentCertificate
from app.models.base import utcnow
from app.storage import get_store

NAMES = ["Northwind Builders Inc", "Lakeside Property Management", "Summit Tower LLC"]


@pytest.fixture
def world(app, make):
    customer = make.customer(name="Acme Roofing LLC")
    staff = make.user(Role.REVIEWER)
    links = [
        holders.add_holder(customer, {"name": name, "email": f"certs{i}@holder{i}.example.com",
                                      "address": f"{100 + i} Main St", "city": "Austin", "state": "TX",
                                      "zip_code": "78701"}, actor=staff, now=utcnow())
        for i, name in enumerate(NAMES)
    ]
    db.session.commit()
    return {"customer": customer, "staff": staff, "links": links}


def _start(world, mode, **kw):
    run = generation.start_generation(world["customer"], holder_ids=kw.pop("holder_ids", None), mode=mode,
                                      actor=world["staff"], now=utcnow(), **kw)
    db.session.commit()
    return run


def _page_texts(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_merged_pdf_has_one_page_per_holder_naming_it(app, world, run_jobs):
    run = _start(world, GenerationMode.MERGED)
    assert run.status is GenerationStatus.QUEUED and run.percent == 0
    assert run_jobs() == 1
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE
    assert (run.done, run.total, run.percent) == (3, 3, 100)
    assert run.filename.endswith(".pdf")
    texts = _page_texts(get_store().read(run.file_key))
    assert len(texts) == 3
    for text, name in zip(texts, sorted(NAMES, key=str.lower), strict=True):
        assert name in text
        assert "Acme Roofing LLC" in text
    assert run.expires_at - run.finished_at == timedelta(days=app.config["GENERATED_FILE_DAYS"])
    assert db.session.scalar(sa.select(sa.func.count(SentCertificate.id))) == 0  # not asked for


def test_zip_has_one_pdf_per_chosen_holder_and_records_sent_when_asked(app, world, run_jobs):
    chosen = [world["links"][0].holder_id, world["links"][2].holder_id]
    run = _start(world, GenerationMode.ZIP, holder_ids=chosen, record_sent=True)
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and run.percent == 100
    with zipfile.ZipFile(get_store().path(run.file_key)) as archive:
        members = archive.namelist()
        assert len(members) == 2
        texts = [" ".join(_page_texts(archive.read(m))) for m in members]
    assert NAMES[0] in texts[0] and NAMES[2] in texts[1]
    assert all(NAMES[1] not in t for t in texts)
    sent = db.session.scalars(sa.select(SentCertificate).order_by(SentCertificate.id)).all()
    assert [(s.holder_name, s.sent_by_id, s.customer_id) for s in sent] == [
        (NAMES[0], world["staff"].id, world["customer"].id), (NAMES[2], world["staff"].id, world["customer"].id)]
    assert NAMES[2] in " ".join(_page_texts(get_store().read(sent[1].document_key)))


def test_progress_is_written_to_the_run_as_it_goes(app, world, monkeypatch):
    seen = []
    from app.customers import holder_jobs

    monkeypatch.setattr(holder_jobs, "PROGRESS_EVERY", 0)
    run = _start(world, GenerationMode.MERGED)
    original = holder_jobs._progress_writer

    def spy(model, run_id, column):
        report = original(model, run_id, column)

        def wrapped(done, total):
            report(done, total)
            seen.append(db.session.scalar(sa.select(model.done).where(model.id == run_id)))
        return wrapped

    monkeypatch.setattr(holder_jobs, "_progress_writer", spy)
    run_id = run.id
    holder_jobs.generate_certificates(run_id)
    run = db.session.get(GenerationRun, run_id)
    assert seen[0] == 0 and seen[-1] == 3 and seen == sorted(seen)
    assert run.percent == 100


def test_email_each_holder_once_even_if_the_job_runs_again(app, world, run_jobs, smtp):
    run = _start(world, GenerationMode.MERGED, email_holders=True, record_sent=True)
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and run.emailed_count == 3
    for i, name in enumerate(NAMES):
        received = smtp.to(f"certs{i}@holder{i}.example.com")
        assert len(received) == 1
        attachments = list(received[0].iter_attachments())
        assert len(attachments) == 1
        assert name in " ".join(_page_texts(attachments[0].get_content()))
    assert all(s.emailed for s in db.session.scalars(sa.select(SentCertificate)))
    # a dead worker left it running: the job runs again, nothing is sent or recorded twice
    db.session.execute(sa.update(GenerationRun).where(GenerationRun.id == run.id)
                       .values(status=GenerationStatus.RUNNING))
    db.session.commit()
    from app.customers.holder_jobs import generate_certificates

    generate_certificates(run.id)
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 3
    assert db.session.scalar(sa.select(sa.func.count(SentCertificate.id))) == 3
    assert len(smtp.to("certs0@holder0.example.com")) == 1


def test_choice_is_checked_before_anything_is_queued(app, world, make):
    with pytest.raises(generation.GenerationError, match="Choose Individual PDFs"):
        _start(world, "tiff")
    with pytest.raises(generation.GenerationError, match="at least one holder"):
        _start(world, GenerationMode.ZIP, holder_ids=[])
    stranger = make.customer()
    other = holders.add_holder(stranger, {"name": "Elsewhere Co", "address": "1 A St", "city": "Austin",
                                          "state": "TX", "zip_code": "78701"}, actor=None, now=utcnow())
    with pytest.raises(generation.GenerationError, match="not additional interests"):
        _start(world, GenerationMode.ZIP, holder_ids=[other.holder_id])
    bare = make.customer(with_policies=False)
    holders.add_holder(bare, {"name": "Bare Co", "address": "1 A St", "city": "Austin", "state": "TX",
                              "zip_code": "78701"}, actor=None, now=utcnow())
    with pytest.raises(generation.GenerationError, match="cannot be generated"):
        generation.start_generation(bare, holder_ids=None, mode="zip", actor=None, now=utcnow())
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(GenerationRun.id))) == 0


def test_sweep_removes_files_after_their_time(app, world, run_jobs):
    run = _start(world, GenerationMode.ZIP)
    run_jobs()
    db.session.refresh(run)
    key = run.file_key
    assert get_store().exists(key)
    assert generation.remove_expired_files(run.expires_at - timedelta(minutes=1)) == 0
    assert generation.remove_expired_files(run.expires_at + timedelta(minutes=1)) == 1
    db.session.commit()
    assert run.status is GenerationStatus.EXPIRED and run.file_key is None
    assert not get_store().exists(key)


def test_sweep_requeues_a_run_left_queued_by_a_lost_job(app, world, run_jobs):
    run = _start(world, GenerationMode.MERGED)
    from app.extensions import jobs

    for queue in jobs.all_queues():
        queue.empty()  # the job was lost (Redis restarted before a worker took it)
    assert run_jobs() == 0
    now = datetime.now(UTC)
    assert generation.requeue_stuck_runs(now) == 0  # not late yet
    assert generation.requeue_stuck_runs(now + timedelta(minutes=6)) == 1
    db.session.commit()
    assert run_jobs() == 1
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and run.percent == 100


def test_inactive_customer_is_refused(app, world):
    from app.enums import CustomerStatus

    world["customer"].status = CustomerStatus.SUSPENDED
    with pytest.raises(generation.GenerationError, match="active customers only"):
        _start(world, GenerationMode.MERGED)


def test_sweep_requeues_a_stuck_import_and_removes_old_uploads(app, run_jobs, monkeypatch):
    from app.customers import imports
    from app.enums import ImportKind, ImportStatus
    from app.models import Holder, ImportRun

    monkeypatch.setattr(imports, "INLINE_ROWS", 0)
    data = b"name,email,phone,address,city,state,zip\nA Co,,,1 Main St,Austin,TX,78701\n"
    run = imports.start_import(ImportKind.HOLDERS, data, "a.csv", actor=None, now=utcnow())
    db.session.commit()  # the job was never enqueued (Redis was down)
    assert run_jobs() == 0
    later = datetime.now(UTC) + timedelta(minutes=16)
    assert generation.requeue_stuck_runs(later) == 1
    db.session.commit()
    assert run_jobs() == 1
    run = db.session.get(ImportRun, run.id)
    assert run.status is ImportStatus.PREVIEW and run.valid_rows == 1
    imports.confirm_import(run, actor=None, now=utcnow())
    imports.apply_import(run, now=utcnow())
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 1
    key = run.file_key
    assert get_store().exists(key)
    assert generation.remove_expired_files(utcnow() + timedelta(days=app.config["GENERATED_FILE_DAYS"] + 1)) == 1
    db.session.commit()
    assert run.file_key is None and not get_store().exists(key)


def test_link_flags_endorse_each_holders_certificate(app, world, run_jobs):
    first, second, third = world["links"]
    second.additional_insured = True
    third.waiver_of_subrogation = third.primary_noncontributory = True
    db.session.commit()
    run = _start(world, GenerationMode.ZIP, record_sent=True)
    merged = _start(world, GenerationMode.MERGED)
    run_jobs()
    db.session.refresh(run)
    db.session.refresh(merged)
    with zipfile.ZipFile(get_store().path(run.file_key)) as archive:
        names = archive.namelist()
        texts = [" ".join(_page_texts(archive.read(m))) for m in names]
    order = [link.holder.name for link in holders.linked_holders(world["customer"].id)]
    assert [n.split("-", 1)[0] for n in names] == ["0001", "0002", "0003"]
    assert all(name in text for name, text in zip(order, texts, strict=True))  # chosen order kept
    pnc = [generation.PNC_WORDING in t for t in texts]
    assert pnc == [name == third.holder.name for name in order]
    sent = {s.holder_name: " ".join(_page_texts(get_store().read(s.document_key)))
            for s in db.session.scalars(sa.select(SentCertificate))}
    assert generation.PNC_WORDING in sent[third.holder.name]
    assert generation.PNC_WORDING not in sent[first.holder.name]
    pages = _page_texts(get_store().read(merged.file_key))
    assert len(pages) == 3 and all(any(name in p for p in pages) for name in NAMES)


def test_endorsed_sets_the_boxes_of_rows_in_force_only():
    data = {"kind": "coi", "description": "Roofing.", "coverages": [
        {"line": "general_liability", "present": True, "addl_insd": False, "subr_wvd": False},
        {"line": "workers_comp", "present": True, "addl_insd": False, "subr_wvd": False},
        {"line": "umbrella", "present": False, "addl_insd": False, "subr_wvd": False},
    ]}
    out = generation.endorsed(data, additional_insured=True, waiver_of_subrogation=True,
                              primary_noncontributory=True)
    assert [(r["addl_insd"], r["subr_wvd"]) for r in out["coverages"]] == [(True, True), (False, True), (False, False)]
    assert out["description"] == f"Roofing.\n{generation.PNC_WORDING}"
    assert data["coverages"][0]["addl_insd"] is False  # the shared data is not changed
    assert generation.endorsed({**data, "kind": "poi"}, additional_insured=True, waiver_of_subrogation=True,
                               primary_noncontributory=True)["coverages"] == data["coverages"]
