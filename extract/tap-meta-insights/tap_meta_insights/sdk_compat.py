"""Every use of Singer SDK internals, in one place (singer-sdk is pinned exactly for them).

The tap moves each bookmark itself when a window completes (not per record) and writes
``insights_windows`` records from inside the insights streams' sync; its settings check runs
where the SDK validates the config. The SDK's public API covers none of this, so these helpers
reach into its private methods. ``tests/test_sdk_compat.py`` checks that each internal named in
``INTERNALS`` still exists with the signature used here: an SDK upgrade that breaks one fails
that test, not a sync. See docs/DECISIONLOG.md.
"""

from __future__ import annotations

import typing as t

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

# (class, attribute) -> the parameters this module relies on (None: a plain attribute).
INTERNALS: dict[tuple[type, str], tuple[str, ...] | None] = {
    (Stream, "_tap"): None,
    (Stream, "_increment_stream_state"): ("self", "latest_record", "context"),
    (Stream, "_write_state_message"): ("self",),
    (Stream, "_write_schema_message"): ("self",),
    (Stream, "_write_record_message"): ("self", "record"),
    (Tap, "_validate_config"): ("self", "raise_errors"),
}


def tap_of(stream: Stream) -> Tap:
    """The tap a stream belongs to (``Stream._tap``; the SDK has no public accessor)."""
    return stream._tap


class WindowBookmarks(Stream):
    """A stream whose bookmarks the tap moves itself, with :func:`write_state`.

    The SDK's per-record max-value tracking is switched off: it would move the bookmark past
    windows not yet complete, wrong for a run killed mid-window.
    """

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        return


def write_state(stream: Stream, *, changed: bool) -> None:
    """Write a STATE message now if the state changed since the last one.

    ``changed``: the caller edited the stream's state (``get_context_state``) itself, which the
    SDK's ``is_flushed`` flag does not notice.
    """
    if changed:
        stream.state_manager.is_flushed = False
    stream._write_state_message()


def write_schema(stream: Stream) -> None:
    """Write the stream's SCHEMA message now."""
    stream._write_schema_message()


def write_record(stream: Stream, record: dict) -> None:
    """Write one RECORD message of the stream now (through its stream maps)."""
    stream._write_record_message(record)


class OwnSettingsCheck(Tap):
    """A tap whose own settings check runs where the SDK validates its config.

    The SDK validates once, in ``__init__``: strictly (``raise_errors``) for a sync, leniently
    for discovery and ``--about``.
    """

    def check_settings(self, *, strict: bool) -> str | None:
        """The tap's settings check: a one-line error, or None when the settings are valid."""
        return None

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        error = self.check_settings(strict=raise_errors)
        if error is not None:
            if raise_errors:
                raise ConfigValidationError(error, errors=[error])
            return [error]
        return super()._validate_config(raise_errors=raise_errors)
