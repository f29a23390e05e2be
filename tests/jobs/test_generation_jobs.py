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


def _certificates(pdf: bytes, count: int) -> list[str]:
    """The text of each certificate in a combined PDF of ``count`` (each has the same number of pages)."""
    pages = _page_texts(pdf)
    per = len(pages) // count
    assert per and len(pages) == count * per, (len(pages), count)
    return [" ".join(pages[i * per:(i + 1) * per]) for i in range(count)]


def test_merged_pdf_has_one_page_per_holder_naming_it(app, world, run_jobs):
    run = _start(world, GenerationMode.MERGED)
    assert run.status is GenerationStatus.QUEUED and run.percent == 0
    assert run_jobs() == 1
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE
    assert (run.done, run.total, run.percent) == (3, 3, 100)
    assert run.filename.endswith(".pdf")
    texts = _certificates(get_store().read(run.file_key), 3)
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
    from app.enums import CoverageLine, EndorsementKind
    from app.models import Endorsement

    first, second, third = world["links"]
    second.additional_insured = True
    third.waiver_of_subrogation = third.primary_noncontributory = True
    gl = next(p for p in world["customer"].policies if p.line is CoverageLine.GENERAL_LIABILITY)
    gl.endorsements += [Endorsement(kind=EndorsementKind.ADDITIONAL_INSURED, form_number="CG 20 10"),
                        Endorsement(kind=EndorsementKind.PRIMARY_NONCONTRIBUTORY, form_number="CG 20 01")]
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
    pages = _certificates(get_store().read(merged.file_key), 3)
    assert [generation.PNC_WORDING in p for p in pages] == pnc  # the chosen order, each with its own flags
    assert all(name in page for name, page in zip(order, pages, strict=True))


def test_endorsed_sets_the_boxes_of_rows_in_force_only():
    data = {"kind": "coi", "description": "Roofing.", "coverages": [
        {"line": "general_liability", "present": True, "addl_insd": False, "subr_wvd": False},
        {"line": "workers_comp", "present": True, "addl_insd": False, "subr_wvd": False},
        {"line": "umbrella", "present": False, "addl_insd": False, "subr_wvd": False},
    ]}
    out = generation.endorsed(data, additional_insured=True, waiver_of_subrogation=True,
                              primary_noncontributory=True)
    # SUBR WVD only on the workers' compensation row, as a single WOS certificate marks it.
    assert [(r["addl_insd"], r["subr_wvd"]) for r in out["coverages"]] == [(True, False), (False, True), (False, False)]
    assert out["description"] == f"Roofing.\n{generation.PNC_WORDING}"
    assert data["coverages"][0]["addl_insd"] is False  # the shared data is not changed
    assert generation.endorsed({**data, "kind": "poi"}, additional_insured=True, waiver_of_subrogation=True,
                               primary_noncontributory=True)["coverages"] == data["coverages"]


# -- any number of holders: chunks, bind parameters, failures that end -----------------------------------

def _many(make, count, *, name="Bigco Roofing LLC"):
    customer = make.customer(name=name)
    staff = make.user(Role.REVIEWER)
    links = [holders.add_holder(customer, {"name": f"Holder {i:02d} Builders", "email": f"h{i}@example.com",
                                           "address": f"{i} Main St", "city": "Austin", "state": "TX",
                                           "zip_code": "78701"}, actor=staff, now=utcnow())
             for i in range(count)]
    db.session.commit()
    return customer, staff, links


def test_more_chosen_holders_than_a_chunk_keep_their_order_in_zip_merged_and_sent(app, make, run_jobs):
    app.config["GENERATION_CHUNK_SIZE"] = 7
    from app.enums import CoverageLine, EndorsementKind
    from app.models import Endorsement

    customer, staff, links = _many(make, 22)
    links[4].additional_insured = links[11].primary_noncontributory = True  # three groups of flags
    gl = next(p for p in customer.policies if p.line is CoverageLine.GENERAL_LIABILITY)
    gl.endorsements += [Endorsement(kind=EndorsementKind.ADDITIONAL_INSURED),
                        Endorsement(kind=EndorsementKind.PRIMARY_NONCONTRIBUTORY)]
    db.session.commit()
    chosen = [link.holder_id for link in reversed(links) if link not in (links[0], links[9])]  # 20, own order
    names = {link.holder_id: link.holder.name for link in links}
    zipped = generation.start_generation(customer, holder_ids=chosen, mode="zip", record_sent=True, actor=staff,
                                         now=utcnow())
    merged = generation.start_generation(customer, holder_ids=chosen, mode="merged", actor=staff, now=utcnow())
    db.session.commit()
    assert (zipped.total, merged.total) == (20, 20)
    assert run_jobs() == 2
    db.session.refresh(zipped)
    db.session.refresh(merged)
    assert zipped.status is GenerationStatus.DONE and merged.status is GenerationStatus.DONE
    with zipfile.ZipFile(get_store().path(zipped.file_key)) as archive:
        members = archive.namelist()
        texts = [" ".join(_page_texts(archive.read(m))) for m in members]
    assert len(members) == 20 and members[0].startswith("0001-Holder-21-Builders")
    assert all(names[h] in text for h, text in zip(chosen, texts, strict=True))
    pages = _certificates(get_store().read(merged.file_key), 20)
    assert all(names[h] in page for h, page in zip(chosen, pages, strict=True))
    pnc = [generation.PNC_WORDING in page for page in pages]
    assert pnc == [h == links[11].holder_id for h in chosen]
    sent = db.session.scalars(sa.select(SentCertificate).order_by(SentCertificate.id)).all()
    assert [s.holder_id for s in sent] == chosen
    # the chosen holders were kept only while the runs needed them
    from app.models import GenerationRunHolder

    assert db.session.scalar(sa.select(sa.func.count()).select_from(GenerationRunHolder)) == 0


def test_no_statement_carries_more_bind_parameters_than_a_chunk(app, make, run_jobs):
    app.config["GENERATION_CHUNK_SIZE"] = 7
    customer, staff, links = _many(make, 40)
    most = most_issued = 0

    def count(conn, cursor, statement, parameters, context, executemany):
        nonlocal most, most_issued
        params = parameters[0] if executemany and isinstance(parameters, list | tuple) and parameters else parameters
        if statement.lstrip().upper().startswith("INSERT INTO ISSUED_CERTIFICATES"):
            most_issued = max(most_issued, len(params or ()))  # one chunk's rows (PostgreSQL: in one statement)
        elif not statement.lstrip().upper().startswith("INSERT INTO GENERATION_RUNS "):  # the run's own row
            most = max(most, len(params or ()))

    from app.insurance.issuing import ensure_default_wording

    ensure_default_wording()  # the banned-wording list is seeded once, in one statement: not per holder
    db.session.commit()
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        chosen = [link.holder_id for link in links[:39]]
        runs = [generation.start_generation(customer, holder_ids=chosen, mode="zip", actor=staff, now=utcnow()),
                generation.start_generation(customer, holder_ids=None, mode="merged", actor=staff, now=utcnow())]
        db.session.commit()
        assert run_jobs() == 2
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    for run in runs:
        db.session.refresh(run)
        assert run.status is GenerationStatus.DONE
    assert [r.total for r in runs] == [39, 40]
    assert 0 < most <= 3 * 7  # one chunk of chosen rows (run, position, holder) at most, never 39 or 40 ids
    # each holder's issued certificate: at most one chunk of rows per statement
    from app.models import IssuedCertificate

    assert 0 < most_issued <= 7 * len(IssuedCertificate.__table__.columns)


def test_a_run_that_cannot_succeed_fails_once_visibly_and_is_not_retried(app, make, run_jobs, client, auth):
    from app.enums import CustomerStatus
    from app.extensions import jobs

    customer, staff, _ = _many(make, 3)
    run = generation.start_generation(customer, holder_ids=None, mode="zip", actor=staff, now=utcnow())
    db.session.commit()
    customer.status = CustomerStatus.SUSPENDED  # after the click, before the worker
    db.session.commit()
    assert run_jobs() == 1
    db.session.refresh(run)
    assert run.status is GenerationStatus.FAILED and run.attempts == 1
    assert "Bigco Roofing LLC is suspended now" in run.error and "Reactivate the customer" in run.error
    auth.login(staff)
    page = client.get(f"/customers/{customer.id}/generations/{run.id}").get_data(as_text=True)
    assert "Reactivate the customer, then start the generation again." in page and "hx-trigger" not in page
    later = datetime.now(UTC) + timedelta(hours=2)
    assert generation.requeue_stuck_runs(later) == 0
    db.session.commit()
    assert sum(q.count for q in jobs.all_queues()) == 0 and run_jobs() == 0
    db.session.refresh(run)
    assert run.status is GenerationStatus.FAILED and run.attempts == 1


def test_an_error_is_retried_with_attempts_that_survive_the_rollback_then_fails(app, world, run_jobs, monkeypatch):
    from app.customers import generation_files

    def broken(self, name, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generation_files.ZipStreamWriter, "add", broken)
    run = _start(world, GenerationMode.ZIP)
    later = datetime.now(UTC)
    for attempt in (1, 2, 3):
        assert run_jobs() == 1
        db.session.refresh(run)
        assert run.attempts == attempt  # counted before the work, kept through the rollback
        if attempt < 3:
            assert run.status is GenerationStatus.RUNNING
            assert f"Attempt {attempt} of 3 failed (OSError: [Errno 28] No space left on device)" in run.error
            later += timedelta(minutes=16)
            assert generation.requeue_stuck_runs(later) == 1  # the sweep tries again
            db.session.commit()
    assert run.status is GenerationStatus.FAILED
    assert run.error.startswith("Generation stopped after 3 attempts. The last error: OSError")
    assert generation.requeue_stuck_runs(later + timedelta(hours=1)) == 0
    db.session.commit()
    assert run_jobs() == 0


def test_check_all_sends_one_choice_not_every_id(app, world, client, auth, run_jobs):
    auth.login(world["staff"])
    customer = world["customer"]
    form = client.get(f"/customers/{customer.id}/interests").get_data(as_text=True)
    assert 'id="check-all-holders" name="all" value="1"' in form and "(all 3 holders)" in form
    response = client.post(f"/customers/{customer.id}/generate", data={"all": "1", "mode": "merged"})
    assert response.status_code == 303
    run = db.session.scalar(sa.select(GenerationRun))
    from app.models import GenerationRunHolder

    assert run.all_holders and run.total == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GenerationRunHolder)) == 0  # no list stored
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and len(_certificates(get_store().read(run.file_key), 3)) == 3


def test_zip_with_more_members_than_a_plain_zip_holds_reads_back(tmp_path):
    from app.customers.generation_files import ZipStreamWriter

    path = tmp_path / "many.zip"
    with path.open("wb") as fh:
        writer = ZipStreamWriter(fh, tmp_path)
        for i in range(70_000):
            writer.add(f"{i:05d}-h.pdf", b"%d" % i)
        writer.close()
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert len(infos) == 70_000
        assert archive.read(infos[69_999]) == b"69999" and archive.testzip() is None


def _gl_addl_insd(cert) -> bool:
    return next(r for r in cert.data["coverages"] if r["line"] == "general_liability")["addl_insd"]


def _gl_row(page: str) -> str:
    """The general liability row of a certificate's first page, from its title to the automobile row."""
    return page[page.index("COMMERCIAL GENERAL LIABILITY"):page.index("AUTOMOBILE LIABILITY")]


@pytest.mark.parametrize("mode", [GenerationMode.ZIP, GenerationMode.MERGED])
def test_a_holder_specific_endorsement_marks_only_that_holders_certificate(app, world, run_jobs, client, mode):
    """Every link asks for additional insured; the GL policy's only AI endorsement names one holder (typed
    with other case and spacing): that holder's certificate prints ADDL INSD, as its single certificate
    would; the others print none, and the run's timeline says why."""
    from app.enums import CoverageLine, EndorsementKind
    from app.models import Activity, Endorsement, IssuedCertificate

    for link in world["links"]:
        link.additional_insured = True
    gl = next(p for p in world["customer"].policies if p.line is CoverageLine.GENERAL_LIABILITY)
    gl.endorsements.append(Endorsement(kind=EndorsementKind.ADDITIONAL_INSURED, form_number="CG 20 26",
                                       holder_name="  lakeside   PROPERTY management "))
    db.session.commit()
    run = _start(world, mode, record_sent=True)
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and run.skipped_count == 0
    certs = {c.holder_name: c for c in db.session.scalars(sa.select(IssuedCertificate))}
    assert {name: _gl_addl_insd(c) for name, c in certs.items()} == {
        "Northwind Builders Inc": False, "Lakeside Property Management": True, "Summit Tower LLC": False}
    sent = {s.holder_name: _gl_row(_page_texts(get_store().read(s.document_key))[0])
            for s in db.session.scalars(sa.select(SentCertificate))}
    assert {name: " Y " in f" {row} " for name, row in sent.items()} == {
        "Northwind Builders Inc": False, "Lakeside Property Management": True, "Summit Tower LLC": False}
    if mode is GenerationMode.MERGED:  # the combined file prints the same, holder by holder (name order)
        pages = _page_texts(get_store().read(run.file_key))
        firsts = pages[::len(pages) // 3]
        assert ["Lakeside Property Management" in p for p in firsts] == [True, False, False]
        assert [" Y " in f" {_gl_row(p)} " for p in firsts] == [True, False, False]
    note = db.session.scalar(sa.select(Activity.message).filter_by(subject_type="generation_run", subject_id=run.id,
                                                                   action="marks_omitted"))
    assert "no blanket additional insured endorsement nor one naming the holder" in note


def test_a_holder_the_guard_blocks_is_skipped_with_its_reason_on_the_run(app, world, run_jobs, client, auth):
    from app.models import Holder, IssuedCertificate

    blocked = world["links"][2].holder
    blocked.address = ""  # the guard's hard block: an incomplete holder address
    db.session.commit()
    run = _start(world, GenerationMode.ZIP, record_sent=True, email_holders=True)
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and (run.total, run.skipped_count) == (2, 1)
    assert {c.holder_name for c in db.session.scalars(sa.select(IssuedCertificate))} == {NAMES[0], NAMES[1]}
    with zipfile.ZipFile(get_store().path(run.file_key)) as archive:
        assert len(archive.namelist()) == 2
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).filter_by(
        to_address="certs2@holder2.example.com")) == 0
    auth.login(world["staff"])
    page = " ".join(client.get(f"/customers/{world['customer'].id}/generations/{run.id}").text.split())
    assert "1 holder skipped" in page
    assert f"{NAMES[2]}: The holder&#39;s address is incomplete (missing street address)." in page
    assert db.session.get(Holder, blocked.id) is not None


def test_a_wos_run_issues_only_to_holders_a_waiver_endorsement_covers(app, world, run_jobs, client, auth):
    """A WOS certificate marks SUBR WVD on the WC row; with only a waiver naming one holder, the others are
    blocked by the guard (as their single WOS request would be) and listed with its reason; with no waiver
    at all the run fails saying why."""
    from app.enums import CoverageLine, EndorsementKind, RequestType
    from app.models import Endorsement, IssuedCertificate

    wc = next(p for p in world["customer"].policies if p.line is CoverageLine.WORKERS_COMP)
    wc.endorsements.clear()
    wc.endorsements.append(Endorsement(kind=EndorsementKind.WAIVER_OF_SUBROGATION, holder_name=NAMES[2]))
    db.session.commit()
    run = _start(world, GenerationMode.ZIP, kind=RequestType.COI_WOS)
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE and (run.total, run.skipped_count) == (1, 2)
    assert [c.holder_name for c in db.session.scalars(sa.select(IssuedCertificate))] == [NAMES[2]]
    auth.login(world["staff"])
    page = " ".join(client.get(f"/customers/{world['customer'].id}/generations/{run.id}").text.split())
    assert "2 holders skipped" in page
    for name in NAMES[:2]:
        assert f"{name}: Needs a waiver of subrogation endorsement" in page

    wc.endorsements.clear()
    db.session.commit()
    again = _start(world, GenerationMode.ZIP, kind=RequestType.COI_WOS)
    run_jobs()
    db.session.refresh(again)
    assert again.status is GenerationStatus.FAILED
    assert again.error.startswith("No certificate was generated: the issue guard blocked every holder (Needs a "
                                  "waiver of subrogation endorsement")
