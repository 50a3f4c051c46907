"""Where the project is and what it declares: paths, the daily cron, the scheduled dbt build.

Everything here is read from the project's own files (meltano.yml's include files), so the
Dagster code location and plain Meltano never disagree on the schedule or the build.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

#: The Meltano schedule whose cron the Dagster schedule follows (orchestrate.meltano.yml).
MELTANO_SCHEDULE = "daily-meta-insights"
#: The dbt command (transform/transformers.meltano.yml) whose selection and vars are the build.
DBT_BUILD_COMMAND = "build_meta"
#: Meta serves insights 37 months back: the first day partition is the first of that month.
MONTHS_BACK = 37


class ConfigError(ValueError):
    """A setting of the code location is wrong (one line: the setting and the fix)."""


def project_root() -> Path:
    """MELTANO_PROJECT_ROOT, else the nearest parent of this package (or of the working
    directory) holding meltano.yml."""
    env_root = os.environ.get("MELTANO_PROJECT_ROOT")
    if env_root:
        return Path(env_root)
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "meltano.yml").is_file():
                return candidate
    raise ConfigError(
        "the Meltano project (meltano.yml) was not found above the code location or the working "
        "directory; set MELTANO_PROJECT_ROOT to the project's directory"
    )


def meta_elt_command(root: Path) -> list[str]:
    """How to run `meta-elt`: META_ELT_BIN, else the project's .venv, else PATH."""
    chosen = os.environ.get("META_ELT_BIN")
    if chosen:
        return [chosen]
    local = root / ".venv" / "bin" / "meta-elt"
    if local.exists():
        return [str(local)]
    found = shutil.which("meta-elt")
    if not found:
        raise ConfigError("meta-elt is not installed; run `make install` or set META_ELT_BIN")
    return [found]


def env_int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number; give {default}-like") from None
    if number < minimum:
        raise ConfigError(f"{name}={number} is below {minimum}; give {minimum} or more")
    return number


def daily_cron(root: Path) -> str:
    """META_ELT_DAGSTER_CRON, else the cron of Meltano's `daily-meta-insights` schedule."""
    override = os.environ.get("META_ELT_DAGSTER_CRON")
    if override:
        return override
    path = root / "orchestrate" / "orchestrate.meltano.yml"
    data = yaml.safe_load(path.read_text()) or {}
    for schedule in data.get("schedules") or []:
        if schedule.get("name") == MELTANO_SCHEDULE:
            return str(schedule["interval"])
    raise ConfigError(f"{path}: no schedule named {MELTANO_SCHEDULE}; restore it")


def first_day(today: dt.date | None = None) -> dt.date:
    """META_ELT_DAGSTER_START_DATE, else the first of the month 37 months back (Meta's horizon)."""
    override = os.environ.get("META_ELT_DAGSTER_START_DATE")
    if override:
        try:
            return dt.date.fromisoformat(override)
        except ValueError:
            raise ConfigError(
                f"META_ELT_DAGSTER_START_DATE={override!r} is not a date; use YYYY-MM-DD"
            ) from None
    today = today or dt.datetime.now(dt.UTC).date()
    months = today.year * 12 + today.month - 1 - MONTHS_BACK
    return dt.date(months // 12, months % 12 + 1, 1)


@dataclass(frozen=True)
class DbtBuild:
    """The scheduled dbt build as `meltano invoke dbt-postgres:build_meta` runs it."""

    select: str
    exclude: str | None
    vars: str | None


def scheduled_build(root: Path) -> DbtBuild:
    path = root / "transform" / "transformers.meltano.yml"
    data = yaml.safe_load(path.read_text()) or {}
    for utility in (data.get("plugins") or {}).get("utilities") or []:
        command = (utility.get("commands") or {}).get(DBT_BUILD_COMMAND)
        if utility.get("name") == "dbt-postgres" and command:
            args = shlex.split(command["args"] if isinstance(command, dict) else command)
            return _parse_build(args, path)
    raise ConfigError(f"{path}: dbt-postgres has no command {DBT_BUILD_COMMAND}; restore it")


#: Flags of the scheduled build about the artifacts it writes, not what it builds: dagster-dbt
#: keeps its own (it reads the run's results), so they are not passed on.
_ARTIFACT_FLAGS = frozenset({"--no-write-json", "--write-json"})


def _parse_build(args: list[str], path: Path) -> DbtBuild:
    if not args or args[0] != "build":
        raise ConfigError(f"{path}: {DBT_BUILD_COMMAND} must be a `build` command")
    values: dict[str, list[str]] = {}
    current = None
    for arg in args[1:]:
        if arg in _ARTIFACT_FLAGS:
            current = None
        elif arg.startswith("--"):
            current = arg
            values.setdefault(current, [])
        elif current:
            values[current].append(arg)
    unknown = set(values) - {"--select", "--exclude", "--vars"}
    if unknown:
        raise ConfigError(f"{path}: {DBT_BUILD_COMMAND} has {sorted(unknown)}, not read here")
    return DbtBuild(
        select=" ".join(values.get("--select") or []),
        exclude=" ".join(values["--exclude"]) if "--exclude" in values else None,
        vars=" ".join(values["--vars"]) if "--vars" in values else None,
    )
