"""Fixtures of the tap's tests (defined in tap_helpers so tests can import its helpers)."""

from tap_helpers import base_config, run_tap, sandbox, sb

__all__ = ["base_config", "run_tap", "sandbox", "sb"]
