"""target-postgres that confirms state as each window is loaded, not every five minutes.

A Singer SDK target writes the tap's latest STATE only after it drains its sinks, and it drains
all of them only at the end of the input or when a record is five minutes old. A run killed before
that resumes from the previous run's state: every window is extracted again, hours of async jobs
on a large backfill. Our tap emits a STATE each time a window's last row has been written (the
bookmark moves), so draining on a changed STATE loads exactly the windows that state vouches for
and confirms them to Meltano, which saves it at once. ``state_confirm_seconds`` (default 10)
spaces the drains so a fast run does not pay a transaction per window: a kill redoes at most the
windows in flight plus that many seconds of loading.
"""

from __future__ import annotations

import time

from target_postgres.target import TargetPostgres

DEFAULT_CONFIRM_SECONDS = 10.0


class TargetPostgresWindowState(TargetPostgres):
    """MeltanoLabs' target-postgres, draining (and so confirming) on each changed STATE."""

    name = "target-postgres"
    config_jsonschema = {
        **TargetPostgres.config_jsonschema,
        "properties": {
            **TargetPostgres.config_jsonschema["properties"],
            "state_confirm_seconds": {
                "type": ["number"],
                "default": DEFAULT_CONFIRM_SECONDS,
                "description": (
                    "Least seconds between two confirmations of a changed STATE (0: every "
                    "STATE). A killed run redoes at most the windows in flight plus this much "
                    "loading."
                ),
            },
        },
    }

    _last_confirmed = 0.0

    def _process_state_message(self, message_dict: dict) -> None:
        changed = message_dict.get("value") != self._latest_state
        super()._process_state_message(message_dict)
        interval = float(self.config.get("state_confirm_seconds", DEFAULT_CONFIRM_SECONDS))
        if changed and time.monotonic() - self._last_confirmed >= interval:
            self.drain_all()  # loads every sink, then writes the latest STATE
            self._last_confirmed = time.monotonic()
