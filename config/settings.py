"""LogLab settings, read from environment variables with defaults that just work.

With nothing set, LogLab runs on one machine with SQLite (WAL) and the in-memory channel layer.
`DATABASE_URL` switches to PostgreSQL and `REDIS_URL` to channels-redis: that is how it scales
past one process and one machine.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "False") -> bool:
    return os.getenv(name, default).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


SECRET_KEY = os.getenv("SECRET_KEY", "loglab-dev-secret-key-change-me-in-production")
DEBUG = envbool("DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

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
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "messaging.views.middleware.LessonUndoMiddleware",
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
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
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
            "BACKEND": "channels_redis.core.RedisChannelLayer",
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
LOGLAB_API_RATE_PER_SECOND = float(os.getenv("LOGLAB_API_RATE_PER_SECOND", "20"))
LOGLAB_SQS_API_RATE_PER_SECOND = float(os.getenv("LOGLAB_SQS_API_RATE_PER_SECOND", "50"))
# Events a reconnecting browser may replay before it must resync from a snapshot instead.
LOGLAB_REPLAY_LIMIT = 500

# Classrooms (messaging/permissions.py, services/rooms.py): students' rate limits, per second
# and per student (per process), and how long a room may sit idle before it is deleted.
LOGLAB_STUDENT_PRODUCE_PER_SECOND = float(os.getenv("LOGLAB_STUDENT_PRODUCE_PER_SECOND", "5"))
LOGLAB_STUDENT_JOINS_PER_SECOND = float(os.getenv("LOGLAB_STUDENT_JOINS_PER_SECOND", "2"))
LOGLAB_STUDENT_ACTIONS_PER_SECOND = float(os.getenv("LOGLAB_STUDENT_ACTIONS_PER_SECOND", "10"))
LOGLAB_ROOM_IDLE_HOURS = float(os.getenv("LOGLAB_ROOM_IDLE_HOURS", "72"))
