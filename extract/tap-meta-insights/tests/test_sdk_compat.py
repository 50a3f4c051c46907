"""The Singer SDK internals the tap relies on (tap_meta_insights.sdk_compat) are still there.

An SDK upgrade that renames or re-signs one fails here, naming it, before any sync runs.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest
from singer_sdk import Stream
from tap_meta_insights import sdk_compat
from tap_meta_insights.tap import TapMetaInsights

PACKAGE = Path(sdk_compat.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def test_singer_sdk_is_the_pinned_version() -> None:
    pin = re.search(r'"singer-sdk==([^"]+)"', PYPROJECT.read_text())
    assert pin, "pin singer-sdk exactly (==) in extract/tap-meta-insights/pyproject.toml"
    assert importlib.metadata.version("singer-sdk") == pin.group(1)


@pytest.mark.parametrize(
    ("owner", "name"),
    [key for key, params in sdk_compat.INTERNALS.items() if params is not None],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_internal_method_has_the_signature_used(owner: type, name: str) -> None:
    method = getattr(owner, name, None)
    assert callable(method), f"singer-sdk has no {owner.__name__}.{name} any more"
    params = tuple(inspect.signature(method).parameters)
    assert params == sdk_compat.INTERNALS[(owner, name)], f"{owner.__name__}.{name}{params}"


def test_state_is_written_only_when_not_flushed() -> None:
    # write_state(changed=True) clears the flag the SDK's _write_state_message checks.
    source = inspect.getsource(Stream._write_state_message)
    assert "if not self.state_manager.is_flushed" in source
    assert "self.state_manager.is_flushed = True" in source


def test_stream_keeps_its_tap_and_a_flushed_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TapMetaInsights, "_setup_signal_handlers", lambda self: None)
    tap = TapMetaInsights(config={"start_date": "2026-01-01"}, validate_config=False)
    stream = tap.streams["insights_ad"]
    assert sdk_compat.tap_of(stream) is tap
    assert stream.state_manager.is_flushed in (True, False)


def test_no_module_but_sdk_compat_uses_sdk_internals() -> None:
    internals = {name for _, name in sdk_compat.INTERNALS} | {"is_flushed"}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "sdk_compat.py":
            continue
        tree = ast.parse(path.read_text())
        used = {
            node.attr if isinstance(node, ast.Attribute) else node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Attribute, ast.FunctionDef))
        }
        assert not used & internals, f"{path.name} uses {used & internals}; go through sdk_compat"


def test_streams_and_tap_do_not_import_each_other() -> None:
    def imports(name: str) -> set[str]:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "tap_meta_insights.tap" not in imports("streams")
    assert "tap_meta_insights.tap" not in imports("run")
    assert "tap_meta_insights.run" not in imports("streams")
