"""Bad settings are refused at start, one readable line per bad value, never a traceback (issue 26)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_each_bad_setting_is_named_in_one_line(tmp_path):
    env = {
        **os.environ,
        "DOGBOT_DATA_DIR": str(tmp_path),
        "DOGBOT_MAX_MEGAPIXELS": "-1",
        "DOGBOT_API_PORT": "eighty",
        "DOGBOT_DB_BUSY_TIMEOUT_S": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "dogbot.cli", "api-token", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 3, result.stderr
    assert any(line.startswith("bad setting: DOGBOT_MAX_MEGAPIXELS=-1: ") for line in lines)
    assert any(line.startswith("bad setting: DOGBOT_API_PORT=eighty: ") for line in lines)
    assert any(line.startswith("bad setting: DOGBOT_DB_BUSY_TIMEOUT_S=0: ") for line in lines)
