"""Configuration, read from environment variables (documented in README.md)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def instance_secret_key(directory: Path = INSTANCE_DIR) -> str:
    """Development only: a random key kept in ``instance/secret_key`` (created once, mode 0600), so
    sessions and exemption links survive restarts of `make run` and no two checkouts share a key."""
    path = directory / "secret_key"
    if not path.exists():
        import secrets

        directory.mkdir(parents=True, exist_ok=True)
        scratch = directory / f".secret_key.{os.getpid()}"
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(scratch, path)  # atomic: the first process of this instance wins, the rest read its key
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text().strip()


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'certdesk.db'}"
    # Accept the common postgres:// spellings and route them through psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Config:
    # "development" (`make run`, the tests) may run without SECRET_KEY: create_app() then uses a
    # random per-checkout key under instance/. Anything else refuses to start without SECRET_KEY.
    CERTDESK_ENV = os.environ.get("CERTDESK_ENV", "production")
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    # "rq": jobs go to Redis for `flask worker`; "inline": jobs run in the web process after commit.
    JOB_MODE = os.environ.get("JOB_MODE", "rq")
    QUEUE_PREFIX = os.environ.get("QUEUE_PREFIX", "certdesk:")
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")

    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = _int("MAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "CertDesk <no-reply@certdesk.local>")
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
    # Seconds between delivery attempts after a temporary failure; empty: the built-in ~3-day schedule.
    MAIL_RETRY_DELAYS = tuple(int(s) for s in os.environ.get("MAIL_RETRY_DELAYS", "").split(",") if s.strip())
    # A delivery claimed longer ago than this is taken to belong to a dead worker and retried.
    MAIL_CLAIM_TIMEOUT_SECONDS = _int("MAIL_CLAIM_TIMEOUT_SECONDS", 900)
    # E-mails one delivery job sends over one SMTP connection (1: one each); jobs an `email`-only
    # worker runs before it exits for a fresh process (docs/deploy.md).
    MAIL_BATCH_SIZE = _int("MAIL_BATCH_SIZE", 200)
    WORKER_MAX_JOBS = _int("WORKER_MAX_JOBS", 2000)

    UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(INSTANCE_DIR / "uploads"))
    INSTANCE_DIR = str(INSTANCE_DIR)  # where development keeps its random secret_key
    MAX_UPLOAD_BYTES = _int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
    # Whole-request cap: the upload limit plus room for the form fields.
    MAX_CONTENT_LENGTH = MAX_UPLOAD_BYTES + 1024 * 1024
    # Forms that answer an oversize file themselves, keeping what was typed, read up to this much.
    OVERSIZE_FORM_BYTES = _int("OVERSIZE_FORM_BYTES", 2 * MAX_CONTENT_LENGTH)
    MAX_IMAGE_PIXELS = _int("MAX_IMAGE_PIXELS", 40_000_000)  # PNG/JPEG uploads: 40 megapixels

    SELLER_NAME = os.environ.get("SELLER_NAME", "CertDesk Demo Supply Co.")
    EXEMPTION_LINK_DAYS = _int("EXEMPTION_LINK_DAYS", 30)
    INVITATION_DAYS = _int("INVITATION_DAYS", 7)  # a customer user's set-password link lives this long
    EXEMPTION_REMINDER_DAYS = tuple(
        int(d) for d in os.environ.get("EXEMPTION_REMINDER_DAYS", "7,1").split(",") if d.strip()
    )
    EXPIRING_SOON_DAYS = _int("EXPIRING_SOON_DAYS", 30)
    # A renewal request goes out this many days before a certificate's earliest jurisdiction expiry.
    EXEMPTION_RENEWAL_DAYS = _int("EXEMPTION_RENEWAL_DAYS", 45)
    # Webhooks: plain http endpoints only when allowed; loopback / private receivers only when listed
    # here as host:port (comma-separated), e.g. for tests and on-premises receivers.
    WEBHOOKS_ALLOW_HTTP = os.environ.get("WEBHOOKS_ALLOW_HTTP", "false").lower() in ("1", "true", "yes")
    WEBHOOKS_ALLOWED_HOSTS = os.environ.get("WEBHOOKS_ALLOWED_HOSTS", "")
    GENERATED_FILE_DAYS = _int("GENERATED_FILE_DAYS", 7)
    GENERATION_CHUNK_SIZE = _int("GENERATION_CHUNK_SIZE", 1000)  # holders per query in mass generation
    SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 60)

    PASSWORD_HASH_METHOD = "scrypt"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = BASE_URL.startswith("https://")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WTF_CSRF_TIME_LIMIT = None

    # Signed-in sessions end after this many minutes without a request (and on logout, password
    # change or reset, and disabling the user).
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 120)
    # How many reverse proxies (TLS terminator, load balancer) stand in front of gunicorn: their
    # X-Forwarded-For/-Proto are trusted, so rate limits see the client's address. 0: no proxy.
    TRUSTED_PROXY_HOPS = _int("TRUSTED_PROXY_HOPS", 0)

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Redis down: count in this process's memory instead of answering 500.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    # Failed sign-ins per account (from any address), on top of the per-address limit.
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "10 per 5 minutes")
    # Certificate resends per signed-in user (each may name up to 20 addresses).
    RESEND_RATE_LIMIT = os.environ.get("RESEND_RATE_LIMIT", "10 per hour")
    LINK_RATE_LIMIT = os.environ.get("LINK_RATE_LIMIT", "60 per minute")
    # Public certificate verify pages (/verify/<code> and the PDF upload), per address.
    VERIFY_RATE_LIMIT = os.environ.get("VERIFY_RATE_LIMIT", "30 per minute")
    # PAdES signing of issued certificates: PEM key and certificate files. Unset: a self-signed pair
    # under instance/signing/ (what `make run` creates); set your own in production.
    CERT_SIGNING_KEY = os.environ.get("CERT_SIGNING_KEY", "")
    CERT_SIGNING_CERT = os.environ.get("CERT_SIGNING_CERT", "")


class DevConfig(Config):
    DEBUG = False


class TestConfig(Config):
    TESTING = True
    CERTDESK_ENV = "development"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SECRET_KEY = "test-secret"
    BASE_URL = "http://certdesk.test"
    SERVER_NAME = None
    JOB_MODE = "rq"
    MAIL_SERVER = ""
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_ENABLED = True
    # Thousands of test users: a cheap hash keeps the suite fast (production keeps scrypt).
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
