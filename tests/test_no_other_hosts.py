"""profiletel reaches no host it was not configured for."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_profiletel_turns_off_whylogs_usage_statistics() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "WHYLOGS_NO_ANALYTICS"}
    script = (
        "import profiletel\n"
        "from whylogs.api import usage_stats\n"
        "print(usage_stats._TELEMETRY_DISABLED)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True,
        timeout=120, check=True,
    )

    assert result.stdout.strip() == "True"
