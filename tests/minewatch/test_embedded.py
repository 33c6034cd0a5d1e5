"""The embedded stack never outlives its owner, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tests.helpers import processes_mentioning

_OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from minewatch.embedded import embedded_mosquitto, embedded_postgres
    from minewatch.settings import Settings
    s = Settings()
    root = Path(sys.argv[1])
    pg = embedded_postgres(root / "pg", s.pg_bin_dir)
    with pg, embedded_mosquitto(root / "mq", s.mosquitto_bin):
        print("up", flush=True)
        time.sleep(600)
    """
)


def test_servers_die_with_an_owner_killed_by_sigkill() -> None:
    root = Path(tempfile.mkdtemp(prefix="minewatch-owner-"))
    root.chmod(0o755)
    with subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(root)], stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "up"
        assert len(processes_mentioning(str(root))) >= 3  # the owner, postgres, mosquitto
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 20
    while processes_mentioning(str(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(root)) == []
