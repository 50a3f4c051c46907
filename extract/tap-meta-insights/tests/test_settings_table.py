"""One table of settings and defaults (settings.DEFAULTS): the schema and Meltano echo it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from tap_meta_insights.settings import CONFIG_SCHEMA, DEFAULTS
from tap_meta_insights.tap import TapMetaInsights

# extract/extractors.meltano.yml, found from this file (tests/ -> tap-meta-insights/ -> extract/).
EXTRACTORS = Path(__file__).resolve().parents[2] / "extractors.meltano.yml"
README = Path(__file__).resolve().parents[1] / "README.md"
# Declared in the Meltano file so Meltano passes them through; the SDK adds them to the schema.
SDK_BUILT_INS = ("stream_maps", "stream_map_config", "flattening_enabled", "flattening_max_depth")


def _meltano_settings() -> list[dict]:
    plugins = yaml.safe_load(EXTRACTORS.read_text())["plugins"]["extractors"]
    (tap,) = [p for p in plugins if p["name"] == "tap-facebook"]
    return tap["settings"]


def test_the_schema_takes_its_settings_and_defaults_from_the_table() -> None:
    # The SDK adds its built-in settings to the tap's schema (in place) when a tap starts.
    built_ins = {"type": "object", "properties": {}}
    TapMetaInsights.append_builtin_config(built_ins)
    properties = CONFIG_SCHEMA["properties"]
    own = {n: p.get("default") for n, p in properties.items() if n not in built_ins["properties"]}
    assert list(own) == list(DEFAULTS)
    assert own == DEFAULTS


def test_meltano_declares_the_tables_settings_with_its_defaults() -> None:
    settings = _meltano_settings()
    names = [s["name"] for s in settings]
    assert names == [*DEFAULTS, *SDK_BUILT_INS], f"{EXTRACTORS}: settings differ from DEFAULTS"
    declared = {s["name"]: s.get("value") for s in settings if s["name"] in DEFAULTS}
    assert declared == DEFAULTS, f"{EXTRACTORS}: a `value:` differs from settings.DEFAULTS"


def test_the_readme_settings_table_shows_the_tables_defaults() -> None:
    shown: dict[str, str] = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        names = re.findall(r"`(\w+)`", cells[0]) if len(cells) == 3 else []
        defaults = [d.strip().strip("`") for d in cells[1].split(" / ")] if names else []
        if names and len(defaults) == len(names):
            shown.update(zip(names, defaults, strict=True))
    assert set(shown) == set(DEFAULTS), "README.md: the Settings table must list every setting"
    for name, default in DEFAULTS.items():
        if default is not None:
            assert shown[name] == str(default), f"README.md: default of {name}"
