"""Finding 1: no fixed signing key. Outside development the app refuses to start without SECRET_KEY;
development uses a random key kept under the instance directory."""

import stat

import pytest

from app import MissingSecretKey, create_app
from config import TestConfig


def _config(tmp_path, **attrs):
    return type("NoKey", (TestConfig,), {"SECRET_KEY": None, "UPLOAD_DIR": str(tmp_path / "up"),
                                          "INSTANCE_DIR": str(tmp_path / "instance"), **attrs})


def test_production_refuses_to_start_without_secret_key(tmp_path):
    with pytest.raises(MissingSecretKey, match="SECRET_KEY is not set"):
        create_app(_config(tmp_path, CERTDESK_ENV="production"))


def test_development_uses_a_random_key_kept_under_instance(tmp_path):
    first = create_app(_config(tmp_path, CERTDESK_ENV="development"))
    key_file = tmp_path / "instance" / "secret_key"
    assert first.secret_key == key_file.read_text().strip()
    assert len(first.secret_key) == 64 and first.secret_key not in ("dev-only-change-me", "test-secret")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # kept: the next start (and the worker) signs with the same key
    assert create_app(_config(tmp_path, CERTDESK_ENV="development")).secret_key == first.secret_key
    # per instance: another instance directory gets another key
    other = create_app(_config(tmp_path / "b", CERTDESK_ENV="development"))
    assert other.secret_key != first.secret_key


def test_a_configured_key_is_used_as_given(tmp_path):
    app = create_app(_config(tmp_path, CERTDESK_ENV="production", SECRET_KEY="k" * 40))
    assert app.secret_key == "k" * 40
    assert not (tmp_path / "instance" / "secret_key").exists()
