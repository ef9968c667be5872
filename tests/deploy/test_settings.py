"""Deployment settings: each started in a process of its own, as a server would start them."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Variables these tests set themselves: nothing of the caller's environment may leak in.
OURS = {
    "DEBUG",
    "SECRET_KEY",
    "LOGLAB_SECRET_KEY_FILE",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "LOGLAB_HTTPS",
    "LOGLAB_PUBLIC_URL",
    "LOGLAB_HSTS_SECONDS",
    "WEB_CONCURRENCY",
    "REDIS_URL",
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
}


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in OURS}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def real_key() -> str:
    return secrets.token_urlsafe(50)


def test_it_refuses_to_start_with_debug_off_on_the_default_secret_key(tmp_path):
    result = run_manage("check", DEBUG="0", LOGLAB_SECRET_KEY_FILE=str(tmp_path / "none"))
    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development key" in result.stderr


def test_it_refuses_the_default_secret_key_even_when_set_explicitly():
    result = run_manage(
        "check", DEBUG="0", SECRET_KEY="loglab-dev-secret-key-change-me-in-production"
    )
    assert result.returncode != 0
    assert "built-in development key" in result.stderr


def test_it_starts_on_the_default_key_in_debug_and_on_the_checkouts_own_key(tmp_path):
    debug = run_manage("check", DEBUG="1", LOGLAB_SECRET_KEY_FILE=str(tmp_path / "none"))
    assert debug.returncode == 0, debug.stderr
    key_file = tmp_path / "key"
    key_file.write_text(real_key() + "\n")
    own = run_manage("check", DEBUG="0", LOGLAB_SECRET_KEY_FILE=str(key_file))
    assert own.returncode == 0, own.stderr


def test_it_refuses_a_key_file_too_short_to_be_a_key(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("short")
    result = run_manage("check", LOGLAB_SECRET_KEY_FILE=str(key_file))
    assert result.returncode != 0
    assert "holds a key of 5 characters" in result.stderr


def test_it_passes_check_deploy_behind_the_https_switch():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        LOGLAB_HTTPS="1",
        SECRET_KEY=real_key(),
        ALLOWED_HOSTS="loglab.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_fails_check_deploy_without_the_https_switch():
    """The switch is what makes it clean: the same check without it names what is missing."""
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="0", SECRET_KEY=real_key()
    )
    assert result.returncode != 0
    for missing in ("SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        assert missing in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a yes/no value"),
        ("LOGLAB_HTTPS", "2", "LOGLAB_HTTPS='2' is not a yes/no value"),
        ("WEB_CONCURRENCY", "four", "WEB_CONCURRENCY='four' is not a whole number"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY=0 is too small"),
        ("WEB_CONCURRENCY", "1.5", "WEB_CONCURRENCY='1.5' is not a whole number"),
        ("LOGLAB_STUDENT_PRODUCE_PER_SECOND", "fast", "is not a number"),
        ("LOGLAB_ROOM_IDLE_HOURS", "-1", "must be a finite number of at least 0"),
        ("LOGLAB_API_RATE_PER_SECOND", "nan", "must be a finite number"),
        ("ALLOWED_HOSTS", " , ", "ALLOWED_HOSTS is set but lists nothing"),
        ("LOGLAB_PUBLIC_URL", "loglab.example.org", "must be scheme://host[:port]"),
        ("LOGLAB_PUBLIC_URL", "https://example.org/loglab", "no path"),
        ("CSRF_TRUSTED_ORIGINS", "example.org", "is not an origin"),
    ],
)
def test_it_refuses_a_bad_value_in_the_environment_with_a_clear_message(name, value, reason):
    result = run_manage("check", **{name: value})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line
    assert reason in last_line


def test_it_refuses_several_processes_on_the_in_memory_channel_layer():
    result = run_manage("check", WEB_CONCURRENCY="2")
    assert result.returncode != 0
    assert "need REDIS_URL" in result.stderr
    with_redis = run_manage("check", WEB_CONCURRENCY="2", REDIS_URL="redis://127.0.0.1:6379/0")
    assert with_redis.returncode == 0, with_redis.stderr


def run_make(*args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith("MAKE")}
    process = subprocess.Popen(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # A server started instead of being refused: stop it (and its children), then fail.
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"`make {' '.join(args)}` ran instead of refusing:\n{out}\n{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_it_refuses_make_run_with_several_workers_and_no_redis():
    result = run_make("run", "WORKERS=3")
    assert result.returncode != 0
    assert "WORKERS=3 needs REDIS_URL" in result.stderr
    assert "LogLab is running" not in result.stdout


def test_it_refuses_a_number_of_workers_that_is_not_a_number():
    result = run_make("check-workers", "WORKERS=many")
    assert result.returncode != 0
    assert "WORKERS=many: give the number of server processes" in result.stderr
