"""Import and generation runs answer "is a job working on it?" and "is it finished?" once, on the model."""

import pytest

from app.enums import IMPORT_TRANSITIONS, GenerationStatus, ImportStatus
from app.models import GenerationRun, ImportRun


@pytest.mark.parametrize("status", list(ImportStatus))
def test_import_run_working_and_finished(status):
    run = ImportRun(status=status)
    assert run.is_working is (status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING))
    assert run.is_finished is (status in (ImportStatus.DONE, ImportStatus.CANCELLED, ImportStatus.FAILED))
    assert not (run.is_working and run.is_finished)
    assert run.is_finished is (IMPORT_TRANSITIONS[status] == frozenset())


@pytest.mark.parametrize("status", list(GenerationStatus))
def test_generation_run_working(status):
    assert GenerationRun(status=status).is_working is (status in (GenerationStatus.QUEUED, GenerationStatus.RUNNING))


@pytest.mark.parametrize("status", list(ImportStatus))
def test_checked_rows_show_once_the_check_finished(status):
    checked = status in (ImportStatus.PREVIEW, ImportStatus.IMPORTING, ImportStatus.DONE, ImportStatus.CANCELLED)
    assert ImportRun(status=status, preview={"new": 1}).has_checked_rows is checked
    assert ImportRun(status=status, preview=None).has_checked_rows is False
