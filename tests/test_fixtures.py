"""Tests carry their own data: every fixture form is documented and used, and no test reads outside
the repository (a fresh clone has nothing beside it)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import paths
from tests.paths import EXEMPTION_FORMS, REPO, ReadOutsideRepository, exemption_forms, outside_repository

README = EXEMPTION_FORMS / "README.md"
# The tests that run once per real form (parametrized over exemption_forms()).
PER_FORM_TESTS = ["tests/unit/test_uploads.py", "tests/web/test_exemption_link.py",
                  "tests/unit/test_exemption_services.py"]


def readme_rows() -> dict[str, dict[str, str]]:
    lines = [line for line in README.read_text().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        rows[cells["file"]] = cells
    return rows


def test_every_fixture_form_has_a_readme_row_with_its_agency_and_source():
    rows = readme_rows()
    files = {p.name for p in exemption_forms()}
    assert len(files) >= 6
    assert set(rows) == files
    for name, row in rows.items():
        assert row["issuing agency"] and row["source (publisher)"], name
        assert (EXEMPTION_FORMS / name).read_bytes()[:5] == b"%PDF-", name


def test_an_empty_fixture_folder_fails_instead_of_collecting_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="would collect nothing"):
        exemption_forms(tmp_path)


def test_each_per_form_test_collects_one_case_per_fixture():
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "--collect-only", "-q"]
    out = subprocess.run(command + PER_FORM_TESTS, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    for module in PER_FORM_TESTS:
        ids = [line for line in out.stdout.splitlines() if line.startswith(module + "::")]
        for form in exemption_forms():
            assert any(f"[{form.name}]" in i for i in ids), f"{module} has no case for {form.name}"


# -- nothing outside the repository ------------------------------------------------------------

@pytest.fixture
def beside_the_repository():
    """A real file next to the repository (as ../shared/... was), removed afterwards."""
    folder = REPO.parent / f"certdesk-test-beside-{os.getpid()}"
    folder.mkdir()
    (folder / "form.pdf").write_bytes(b"%PDF-1.4 beside")
    before = len(paths.violations)
    yield folder
    del paths.violations[before:]  # the test broke the rule on purpose
    (folder / "form.pdf").unlink()  # no directory listing: that would be refused too
    folder.rmdir()


@pytest.fixture
def strict_roots(monkeypatch):
    """The guard's rules without the temp-folder exemption (a checkout may sit in the temp folder itself)."""
    monkeypatch.setattr(paths, "roots", (paths._roots([REPO.parent]), paths._roots([REPO])))


def test_reading_beside_the_repository_is_refused_and_recorded(beside_the_repository, strict_roots):
    before = len(paths.violations)
    beside = beside_the_repository / "form.pdf"
    with pytest.raises(ReadOutsideRepository, match="copy the file into tests/fixtures"):
        beside.read_bytes()
    with pytest.raises(ReadOutsideRepository):
        list(beside_the_repository.iterdir())
    assert paths.violations[before:] == [str(beside), str(beside_the_repository)]


def test_reads_inside_the_repository_and_temp_files_are_allowed(tmp_path):
    (tmp_path / "x.txt").write_text("ok")
    assert (tmp_path / "x.txt").read_text() == "ok"
    assert README.read_text().startswith("# Real")
    assert not outside_repository(REPO / "tests" / ".." / "app" / "__init__.py")
    assert not outside_repository(REPO / ".." / "shared-missing" / "x.pdf")  # fails on its own: not found
    assert not outside_repository(REPO.parent / ".reportlab_mods")  # a tool's hidden settings


def test_a_library_probing_for_its_hidden_settings_still_works():
    import reportlab  # probes ~/.reportlab_mods and such beside a checkout in the home folder

    assert reportlab.Version


ESCAPING_PATH = re.compile(r"^/(home|root|srv|mnt|media|data|opt)/|shared/testdata")


def path_escapes(source: str, relative: Path) -> list[str]:
    """Places in a test's source that build a file path outside the repository."""
    depth = len(relative.parts)  # Path(__file__).parents[depth - 1] is the repository root
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{relative}:{getattr(node, 'lineno', '?')}"
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant)
                and isinstance(node.right.value, str) and node.right.value.startswith("..")):
            found.append(f"{where}: / {node.right.value!r}")
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
              and node.value.attr == "parents" and isinstance(node.slice, ast.Constant)
              and isinstance(node.slice.value, int) and node.slice.value >= depth
              and "__file__" in ast.unparse(node)):
            found.append(f"{where}: .parents[{node.slice.value}]")
        elif (isinstance(node, ast.Attribute) and node.attr == "parent" and isinstance(node.value, ast.Subscript)
              and isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "parents"
              and isinstance(node.value.slice, ast.Constant) and node.value.slice.value == depth - 1
              and "__file__" in ast.unparse(node)):
            found.append(f"{where}: .parents[{depth - 1}].parent")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ESCAPING_PATH.search(node.value):
            found.append(f"{where}: {node.value!r}")
    return found


def test_no_test_builds_a_path_outside_the_repository():
    escapes = []
    for file in sorted((REPO / "tests").rglob("*.py")):
        if file.name == "test_fixtures.py":
            continue
        escapes += path_escapes(file.read_text(), file.relative_to(REPO))
    assert escapes == []


@pytest.mark.parametrize("source", [
    'FORMS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"',
    'FORMS = Path(__file__).resolve().parents[2].parent / "shared"',
    'FORMS = Path(__file__).resolve().parents[3] / "shared"',
    'data = open("/srv/forms/x.pdf", "rb").read()',
    'data = Path("/home/me/forms/x.pdf").read_bytes()',
])
def test_the_source_check_finds_each_kind_of_escape(source):
    assert path_escapes(source, Path("tests/unit/test_x.py"))


def test_the_source_check_accepts_paths_inside_the_repository():
    source = ('A = Path(__file__).resolve().parents[1] / "fixtures"\nB = Path(__file__).parents[2] / "app"\n'
              'check_upload(data, "../../etc/passwd.png")\nROOT = CATALOG.parents[3]\n')
    assert path_escapes(source, Path("tests/unit/test_x.py")) == []
