"""The alerting hook point: failed cleanup runs are handed, as JSON on stdin, to a command of the operator's."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

from dagster import ConfigurableResource, EnvVar

from forge_assets.conninfo import redact


class FailureAlerts(ConfigurableResource):
    """Runs `command` (FORGE_ALERT_COMMAND, e.g. a script that pages or posts to chat) with one failure as JSON
    on its standard input. Without a command, failures are only logged and recorded on the assets."""

    command: str | None = None
    timeout_seconds: float = 30.0

    @classmethod
    def from_environment(cls) -> FailureAlerts:
        """Configured from FORGE_ALERT_COMMAND, passed as an EnvVar (its value stays out of the UI)."""
        return cls(command=EnvVar("FORGE_ALERT_COMMAND") if "FORGE_ALERT_COMMAND" in os.environ else None)

    def send(self, failure: dict) -> str | None:
        """Deliver one failure; return a one-line problem when the hook itself failed, else None."""
        if not self.command:
            return None
        try:
            done = subprocess.run(shlex.split(self.command), input=json.dumps(failure), text=True,
                                  capture_output=True, timeout=self.timeout_seconds, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"alert command failed: {redact(str(exc))}"
        if done.returncode:
            tail = redact(done.stderr.strip().splitlines()[-1]) if done.stderr.strip() else "no output"
            return f"alert command exited {done.returncode}: {tail}"
        return None
