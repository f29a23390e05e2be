"""scripts/system-deps.sh: what a fresh machine lacks comes from the package manager when root, otherwise one
line says which command to run. `id` and `apt-get` are stand-ins here, so nothing is installed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.paths import REPO

SCRIPT = REPO / "scripts" / "system-deps.sh"


@pytest.fixture
def fake_bin(tmp_path):
    """A PATH holding `id` (uid from $FAKE_UID), `apt-get` (records its arguments and environment) and the
    tools the script may look for, each present only if listed in $FAKE_TOOLS."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "id").write_text('#!/bin/sh\necho "${FAKE_UID:-1000}"\n')
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {log}\n')
    for tool in ("pdftoppm", "redis-server"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir, log


def run(fake_bin, tmp_path, *, uid: str, chromium: bool = True, pdftoppm: bool = True, mode: str = "test"):
    bin_dir, _ = fake_bin
    if not pdftoppm:
        (bin_dir / "pdftoppm").unlink()
    chromium_path = tmp_path / "chromium"
    if chromium:
        chromium_path.write_text("#!/bin/sh\n")
        chromium_path.chmod(0o755)
    env = {"PATH": str(bin_dir), "FAKE_UID": uid, "CHROMIUM_PATH": str(chromium_path),
           "PYTHON": sys.executable, "REDIS_URL": "redis://127.0.0.1:6379/0", "HOME": str(tmp_path)}
    # the checkout's .venv exists, so Python's venv module is not needed
    return subprocess.run(["/bin/sh", str(SCRIPT), mode], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_nothing_missing_does_nothing(fake_bin, tmp_path):
    out = run(fake_bin, tmp_path, uid="0")
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""
    assert not fake_bin[1].exists()


def test_root_installs_the_missing_debian_packages_non_interactively(fake_bin, tmp_path):
    out = run(fake_bin, tmp_path, uid="0", chromium=False, pdftoppm=False)
    assert out.returncode == 0, out.stderr
    assert "Installing system packages: chromium poppler-utils" in out.stdout
    calls = fake_bin[1].read_text().splitlines()
    assert calls[0].endswith("update -qq")
    assert calls[1] == "noninteractive install -y -qq chromium poppler-utils"


def test_without_root_one_line_names_the_command(fake_bin, tmp_path):
    out = run(fake_bin, tmp_path, uid="1000", chromium=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "Missing system packages; run: sudo apt-get update && sudo apt-get install -y chromium"]
    assert not fake_bin[1].exists()


def test_make_run_does_not_ask_for_the_browser(fake_bin, tmp_path):
    out = run(fake_bin, tmp_path, uid="1000", chromium=False, pdftoppm=False, mode="run")
    assert out.returncode == 0 and out.stderr == ""


def test_make_test_checks_the_system_first():
    # Run as a top-level make even when the suite itself runs under `make test` (no "Entering directory").
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "test"], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env=env)
    lines = out.stdout.splitlines()
    assert lines[0].endswith("sh scripts/system-deps.sh test")
    assert any("scripts/with_redis.py" in line and "pytest" in line for line in lines)
