"""Where test data lives (inside the repository, under tests/fixtures/) and the guard that keeps it there.

A test that reads a file next to the repository (say `../shared/...`) passes on one machine and
collects nothing, or fails, on a fresh clone. `install_read_guard()` (called by tests/conftest.py
before any test module is imported) adds a Python audit hook that refuses such reads: every `open`,
`os.listdir` and `os.scandir` of an existing path beside the repository (in its parent folder, other than
the repository itself, the temporary directory, Python's own installation and hidden tool settings such
as `~/.cache`) raises `ReadOutsideRepository`, and the attempt is recorded so that a test that swallowed
the error still fails. Paths that do not exist are left to fail on their own.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
EXEMPTION_FORMS = FIXTURES / "exemption-forms"


def exemption_forms(folder: Path | None = None) -> list[Path]:
    """The real state forms under tests/fixtures/exemption-forms, for parametrizing tests.

    An empty or missing folder is an error, so a parametrized test fails to collect instead of
    silently collecting nothing.
    """
    folder = folder or EXEMPTION_FORMS
    forms = sorted(folder.glob("*.pdf"))
    if not forms:
        raise RuntimeError(f"No exemption forms in {folder}: the tests that use them would collect nothing.")
    return forms


class ReadOutsideRepository(RuntimeError):
    """Not an OSError on purpose: nothing that tolerates a missing file may swallow it."""


violations: list[str] = []


def _roots(paths) -> tuple[str, ...]:
    out = []
    for p in paths:
        if p:
            out.append(os.path.realpath(p).rstrip(os.sep) + os.sep)
    return tuple(dict.fromkeys(out))


def _watched() -> tuple[str, ...]:
    """Where a stray read means data that a fresh clone would not have: next to the repository."""
    return _roots([REPO.parent])


def _allowed() -> tuple[str, ...]:
    python = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              *sysconfig.get_paths().values(), *[p for p in sys.path if p and os.path.isabs(p)]]
    return _roots([REPO, tempfile.gettempdir(), *python])


def outside_repository(path, *, watched=None, allowed=None) -> bool:
    """True when `path` exists beside the repository, not in an allowed place nor a hidden tool folder."""
    if isinstance(path, int):
        return False
    try:
        name = os.fsdecode(os.fspath(path))
    except TypeError:
        return False
    full = os.path.realpath(name) + os.sep
    watched = _watched() if watched is None else watched
    allowed = _allowed() if allowed is None else allowed
    inside = next((w for w in watched if full.startswith(w)), None)
    if inside is None or full.startswith(allowed) or full[len(inside):].startswith("."):
        return False
    return os.path.exists(name)


_installed = False
# (watched, allowed) the hook applies; tests/test_fixtures.py narrows it for a moment to prove the hook works
# wherever the checkout is (when it sits directly in the temporary folder, its neighbours are temp files).
roots: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def install_read_guard() -> None:
    global _installed, roots
    if _installed:
        return
    roots = (_watched(), _allowed())
    events = {"open", "os.listdir", "os.scandir"}

    def hook(event, args):
        if event in events and args and args[0] is not None and outside_repository(
                args[0], watched=roots[0], allowed=roots[1]):
            violations.append(os.fsdecode(os.fspath(args[0])))
            raise ReadOutsideRepository(
                f"A test read {args[0]!r}, outside the repository: copy the file into tests/fixtures/.")

    sys.addaudithook(hook)
    _installed = True
