"""docs/clients-sqs.md works as written: with no room given, its examples make their own room
(POST /api/rooms) on a live server and run through, in order, in one interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support.server import ROOT, manage, serve, server_env

BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_it_runs_the_sqs_guide_as_written_making_its_own_room(tmp_path):
    script = "\n".join(BLOCK.findall((ROOT / "docs" / "clients-sqs.md").read_text()))
    assert "LOGLAB_SQS_ENDPOINT" in script and "/api/rooms" in script
    env = server_env(SQLITE_PATH=str(tmp_path / "docs-sqs.sqlite3"))
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    manage("migrate", "--noinput", env=env)
    with serve(env) as base:
        reader = {k: v for k, v in os.environ.items() if not k.startswith("LOGLAB_")}
        reader["LOGLAB_URL"] = base  # the only thing a reader would change: where LogLab runs
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=reader,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"your room: http://127\.0\.0\.1:\d+/r/[A-Z0-9]{6}/", done.stdout)
