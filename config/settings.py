"""LogLab settings, read from environment variables with defaults that just work.

With nothing set, LogLab runs on one machine with SQLite (WAL) and the in-memory channel layer.
`DATABASE_URL` switches to PostgreSQL and `REDIS_URL` to Redis (pub/sub between the processes:
infra/layers.py): that is how it scales past one process and one machine.
"""

import math
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from messaging.infra.addresses import LOOPBACK_NAMES, host_names, machine_addresses

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def envbool(name: str, default: bool | str = False) -> bool:
    """A yes/no from the environment; anything but 1/0, true/false, yes/no, on/off is refused."""
    raw = os.getenv(name, "").strip()
    if not raw:
        return default if isinstance(default, bool) else default.strip().lower() in _TRUE
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a yes/no value: use 1 or 0 (true/false, yes/no, on/off)."
    )


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.getenv(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is too small: it must be at least {minimum}.")
    return value


def envfloat(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.getenv(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not math.isfinite(value) or value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be a finite number of at least {minimum}.")
    return value


def envlist(name: str) -> list[str] | None:
    """A comma-separated list, or None when the variable is unset; set but empty is refused."""
    raw = os.getenv(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} is set but lists nothing: unset it or name a value.")
    return items


DEBUG = envbool("DEBUG")

# The key signs sessions (an instructor's login): a known key lets anyone forge one. With
# DEBUG off the built-in development key is refused; `make setup` writes a random key of this
# checkout's own into .loglab-secret-key, which is read when SECRET_KEY is not set, so `make
# run` works on a bare machine without a key anybody else knows.
DEV_SECRET_KEY = "loglab-dev-secret-key-change-me-in-production"
SECRET_KEY_FILE = Path(os.getenv("LOGLAB_SECRET_KEY_FILE", str(BASE_DIR / ".loglab-secret-key")))


def _secret_key() -> str:
    if key := os.getenv("SECRET_KEY", "").strip():
        return key
    try:
        key = SECRET_KEY_FILE.read_text().strip()
    except FileNotFoundError:
        return DEV_SECRET_KEY
    if len(key) < 50:
        raise ImproperlyConfigured(
            f"{SECRET_KEY_FILE} holds a key of {len(key)} characters: delete it and run "
            "`make setup` for a new one, or set SECRET_KEY."
        )
    return key


SECRET_KEY = _secret_key()
if SECRET_KEY == DEV_SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured(
        "DEBUG is off and SECRET_KEY is the built-in development key, which anyone can read: "
        "set SECRET_KEY (python -c 'import secrets; print(secrets.token_urlsafe(50))'), or run "
        f"`make setup` to write a key of this checkout's own into {SECRET_KEY_FILE}, "
        "or set DEBUG=1 on a development machine."
    )

# Where people reach the app when it is not this machine's own address: behind a proxy,
# https://loglab.example.org. The join URL and its QR code use it; its host is allowed.
LOGLAB_PUBLIC_URL = os.getenv("LOGLAB_PUBLIC_URL", "").strip().rstrip("/")
if LOGLAB_PUBLIC_URL:
    _public = urlsplit(LOGLAB_PUBLIC_URL)
    if _public.scheme not in {"http", "https"} or not _public.hostname or _public.path:
        raise ImproperlyConfigured(
            f"LOGLAB_PUBLIC_URL={LOGLAB_PUBLIC_URL!r} must be scheme://host[:port], e.g. "
            "https://loglab.example.org (LogLab is served from the root, no path)."
        )
# The address `make run` / `make classroom` listened on (unset when started otherwise): a
# loopback one means phones cannot connect, which the presenter view says.
LOGLAB_BIND_HOST = os.getenv("LOGLAB_BIND_HOST", "").strip()

# The app answers to this machine's own addresses, found at start, so a phone's
# `Host: <lan-ip>:<port>` is accepted (and the websocket's Origin, which Channels'
# AllowedHostsOriginValidator checks against this list). Addresses are no DNS-rebinding risk:
# a rebinding page sends its own domain name as Host. ALLOWED_HOSTS replaces the list.
LOGLAB_MACHINE_ADDRESSES = machine_addresses()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS") or [
    *LOOPBACK_NAMES,
    *LOGLAB_MACHINE_ADDRESSES,
    *host_names(),
]
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS") or []
if LOGLAB_PUBLIC_URL:
    if _public.hostname not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_public.hostname)
    # A proxy may pass its own Host upstream; the browser's Origin is still the public one.
    CSRF_TRUSTED_ORIGINS.append(f"{_public.scheme}://{_public.netloc}")
for _origin in CSRF_TRUSTED_ORIGINS:
    if urlsplit(_origin).scheme not in {"http", "https"} or not urlsplit(_origin).netloc:
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS: {_origin!r} is not an origin like https://loglab.example.org."
        )

# Behind TLS (a proxy that sets X-Forwarded-Proto): one switch for everything that needs it.
LOGLAB_HTTPS = envbool("LOGLAB_HTTPS")
if LOGLAB_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("LOGLAB_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("LOGLAB_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("LOGLAB_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a request to the browsers' built-in lists, hard to take back: the
        # operator of the domain opts in (LOGLAB_HSTS_PRELOAD=1), not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "messaging.infra.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "messaging.views.middleware.LessonUndoMiddleware",
    # The room APIs name a paused or faster clock in every answer (X-LogLab-Clock).
    "messaging.api.clock_header.ClockHeaderMiddleware",
    # Last, so asked first: a view whose database went away answers 503, not 500.
    "messaging.infra.dbdown.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "messaging.permissions.room_viewer",
            ],
        },
    },
]

# SQLite by default. IMMEDIATE transactions take the write lock up front, so concurrent
# writers queue behind the busy timeout instead of failing with "database is locked" when a
# read transaction tries to upgrade.
SQLITE_PATH = os.getenv("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
# wal_autocheckpoint is raised from 1000 pages because serving processes checkpoint in a thread
# of their own (messaging/live/checkpointer.py), off the request path.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000;"
    ),
}
if os.getenv("DATABASE_URL"):
    # Under ASGI each request's synchronous code runs in a thread of its own, so persistent
    # connections (CONN_MAX_AGE > 0) pile up, one per thread: 8 REST writers once held 97 of
    # PostgreSQL's 100. PostgreSQL gets Django's psycopg pool instead, bounded per process
    # (LOGLAB_DB_POOL_SIZE; a request waits up to LOGLAB_DB_POOL_TIMEOUT s for a connection).
    # Closing connections after each request instead (LOGLAB_DB_POOL_SIZE=0) holds one per
    # request in flight, with no bound: 33 under 32 writers, at half the pool's throughput
    # (docs/deployment.md has the measurements).
    # Health checks: after PostgreSQL restarts, a pooled connection is dead; checked before
    # use, it is replaced, and the first request after the restart works instead of a 500.
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=0, conn_health_checks=True
        )
    }
    # Not in pytest's own process by default: every async test runs on an event loop of its
    # own, and a loop's executor threads that touched the database (a room driver's tick) are
    # abandoned with it, their connections still checked out: tests/live on PostgreSQL ran the
    # pool dry after ten tests. The servers the tests start (tests/support/server.py) are
    # separate processes and pool as production does.
    LOGLAB_DB_POOL_SIZE = envint(
        "LOGLAB_DB_POOL_SIZE", 0 if "pytest" in sys.modules else 10, minimum=0
    )
    if LOGLAB_DB_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": LOGLAB_DB_POOL_SIZE,
            "timeout": envint("LOGLAB_DB_POOL_TIMEOUT", 20, minimum=1),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "messaging.infra.sqlite",
            "NAME": SQLITE_PATH,
            "OPTIONS": SQLITE_OPTIONS,
            # Tests run against a real file too: an in-memory database cannot show what
            # concurrent writers do to the log.
            "TEST": {"NAME": os.getenv("SQLITE_TEST_PATH", str(BASE_DIR / "test-db.sqlite3"))},
        }
    }

REDIS_URL = os.getenv("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub between processes, each process's own queues within it: one
            # message through Redis per event, not one per socket (infra/layers.py says why).
            "BACKEND": "messaging.infra.layers.RoomRedisLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.getenv("CHANNELS_PREFIX", "loglab"),
                "capacity": envint("CHANNELS_CAPACITY", 1000),
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "messaging.infra.layers.RoomChannelLayer"}}

# Server processes (uvicorn --workers reads the same variable; `make run WORKERS=N` sets it).
# The in-memory layer lives in one process: with several, each would see only its own
# websockets and a room's events would reach only some screens. Refused, not half working.
WEB_CONCURRENCY = envint("WEB_CONCURRENCY", 1, minimum=1)
if WEB_CONCURRENCY > 1 and not REDIS_URL:
    raise ImproperlyConfigured(
        f"WEB_CONCURRENCY={WEB_CONCURRENCY} server processes need REDIS_URL: the in-memory "
        "channel layer is per process. Start Redis and set REDIS_URL=redis://127.0.0.1:6379/0, "
        "or run one process."
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "classroom_list"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed but not hashed: a classroom server rarely redeploys, and unhashed names keep
    # `make run` working even when someone edits a file without collecting static again.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# `make run` and `make test` collect static files (compressed copies included) into
# STATIC_ROOT; serving from the apps' folders instead is for development (DEBUG) or a checkout
# that never collected, since found files would shadow the compressed ones.
WHITENOISE_USE_FINDERS = DEBUG or not (STATIC_ROOT / "loglab").is_dir()
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}

# Bounds on what anyone may ask for: every user-supplied size has a ceiling.
LOGLAB_MAX_KEY_CHARS = 256
LOGLAB_MAX_VALUE_BYTES = 10 * 1024
LOGLAB_MAX_PARTITIONS = 128
LOGLAB_MAX_TOPICS_PER_ROOM = 20
LOGLAB_MAX_TOPIC_NAME = 249  # Kafka's own limit on a topic name
LOGLAB_MAX_FETCH = 500  # max.poll.records' default
LOGLAB_MAX_ROOM_TITLE = 80
# Requests per second a client may make to the APIs (per process); over it: 429 / throttled.
LOGLAB_API_RATE_PER_SECOND = envfloat("LOGLAB_API_RATE_PER_SECOND", 20)
LOGLAB_SQS_API_RATE_PER_SECOND = envfloat("LOGLAB_SQS_API_RATE_PER_SECOND", 50)
# Events a reconnecting browser may replay before it must resync from a snapshot instead.
LOGLAB_REPLAY_LIMIT = 500

# Classrooms (messaging/permissions.py, services/rooms.py): students' rate limits, per second
# and per student (per process), and how long a room may sit idle before it is deleted.
LOGLAB_STUDENT_PRODUCE_PER_SECOND = envfloat("LOGLAB_STUDENT_PRODUCE_PER_SECOND", 5)
LOGLAB_STUDENT_JOINS_PER_SECOND = envfloat("LOGLAB_STUDENT_JOINS_PER_SECOND", 2)
LOGLAB_STUDENT_ACTIONS_PER_SECOND = envfloat("LOGLAB_STUDENT_ACTIONS_PER_SECOND", 10)
LOGLAB_ROOM_IDLE_HOURS = envfloat("LOGLAB_ROOM_IDLE_HOURS", 72)

# Limits (messaging/infra/rates.py, views/accounts.py): where every process's rate limits are
# counted (auto: Redis when REDIS_URL is set, else the database; memory: this process only),
# and log-in / sign-up throttling: failures allowed in a row, then one more per refill period.
LOGLAB_RATE_BACKEND = os.getenv("LOGLAB_RATE_BACKEND", "").strip().lower() or "auto"
if LOGLAB_RATE_BACKEND not in {"auto", "memory", "redis", "database"}:
    raise ImproperlyConfigured(
        f"LOGLAB_RATE_BACKEND={LOGLAB_RATE_BACKEND!r}: use auto, memory, redis or database."
    )
if LOGLAB_RATE_BACKEND == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("LOGLAB_RATE_BACKEND=redis needs REDIS_URL.")
LOGLAB_LOGIN_FAILURES_PER_USERNAME = envint("LOGLAB_LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
LOGLAB_LOGIN_FAILURES_PER_IP = envint("LOGLAB_LOGIN_FAILURES_PER_IP", 20, minimum=1)
LOGLAB_SIGNUPS_PER_IP = envint("LOGLAB_SIGNUPS_PER_IP", 5, minimum=1)
LOGLAB_LOGIN_REFILL_SECONDS = envfloat("LOGLAB_LOGIN_REFILL_SECONDS", 60, minimum=1)

# Presence (live helper; messaging/models.py, live/consumers.py): how often each process tells
# the database its students' pages are still open, and how long a page counts as open after
# that (so the pages of a process that died go offline within their sum).
LOGLAB_STUDENT_SEEN_REFRESH_S = envfloat("LOGLAB_STUDENT_SEEN_REFRESH_S", 10, minimum=0.5)
LOGLAB_STUDENT_SEEN_WINDOW_S = envfloat("LOGLAB_STUDENT_SEEN_WINDOW_S", 30, minimum=1)
if LOGLAB_STUDENT_SEEN_WINDOW_S <= LOGLAB_STUDENT_SEEN_REFRESH_S:
    raise ImproperlyConfigured(
        "LOGLAB_STUDENT_SEEN_WINDOW_S must be longer than LOGLAB_STUDENT_SEEN_REFRESH_S, "
        "or open pages would blink offline between two refreshes."
    )

# The Kafka protocol (messaging/api/kafka_wire/): `manage.py serve` listens on this port beside
# the web app (0: not at all). A client that connects without SASL lands in the default room.
LOGLAB_KAFKA_PORT = envint("LOGLAB_KAFKA_PORT", 9092, minimum=0)
if LOGLAB_KAFKA_PORT > 65535:
    raise ImproperlyConfigured(f"LOGLAB_KAFKA_PORT={LOGLAB_KAFKA_PORT}: a TCP port is 0 to 65535.")
LOGLAB_KAFKA_DEFAULT_ROOM = os.getenv("LOGLAB_KAFKA_DEFAULT_ROOM", "KAFKA7").strip().upper()
# Bounds on what a client may ask for; past them it gets Kafka's own error codes.
# message.max.bytes (Kafka's default 1048588: 1 MiB plus a batch header) bounds a request.
LOGLAB_KAFKA_MAX_FRAME_BYTES = envint("LOGLAB_KAFKA_MAX_FRAME_BYTES", 1_048_588, minimum=65_536)
LOGLAB_KAFKA_MAX_VALUE_BYTES = envint("LOGLAB_KAFKA_MAX_VALUE_BYTES", 65_536, minimum=1024)
LOGLAB_KAFKA_MAX_ROOM_RECORDS = envint("LOGLAB_KAFKA_MAX_ROOM_RECORDS", 250_000, minimum=1000)
LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ROOM = envint(
    "LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ROOM", 200, minimum=1
)
LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ADDRESS = envint(
    "LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ADDRESS", 100, minimum=1
)
LOGLAB_KAFKA_REQUESTS_PER_SECOND = envfloat("LOGLAB_KAFKA_REQUESTS_PER_SECOND", 500, minimum=1)
# group.initial.rebalance.delay.ms of groups with a real client (Kafka's default: 3 s).
# The rooms' timelines (services/timeline.py): 0 turns their captures off.
LOGLAB_TIMELINE = envbool("LOGLAB_TIMELINE", True)
LOGLAB_KAFKA_INITIAL_REBALANCE_DELAY_MS = envint(
    "LOGLAB_KAFKA_INITIAL_REBALANCE_DELAY_MS", 3000, minimum=0
)
# Records one partition of a Fetch brings at most (a Fetch asks for bytes; this bounds the rows).
LOGLAB_KAFKA_FETCH_RECORDS = envint("LOGLAB_KAFKA_FETCH_RECORDS", 2000, minimum=1)
