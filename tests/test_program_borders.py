"""The three programs (and the loader) stay apart: none imports another, and the operator CLI's
wheel ships neither the tap nor the sandbox (README, "Layout")."""

from __future__ import annotations

import ast
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT

PROGRAMS = {
    "meta_elt": ROOT / "src" / "meta_elt",
    "tap_meta_insights": ROOT / "extract" / "tap-meta-insights" / "tap_meta_insights",
    "meta_sandbox": ROOT / "sandbox" / "meta_sandbox",
    "target_postgres_window_state": ROOT
    / "load"
    / "target-postgres-window-state"
    / "target_postgres_window_state",
}


def _imported_packages(package: Path) -> set[str]:
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_no_program_imports_another(program: str):
    imported = _imported_packages(PROGRAMS[program])
    assert "__future__" in imported, "the scan read the package"
    others = set(PROGRAMS) - {program}
    assert not imported & others, f"{program} imports {sorted(imported & others)}"


def test_the_cli_wheel_ships_only_the_cli(tmp_path: Path):
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "uv"), "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("meta_elt-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip().lower()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    packages = {name.split("/")[0] for name in names if not name.endswith(".dist-info/")}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"meta_elt"}
    assert "src/meta_elt/cli.py" not in names and "meta_elt/cli.py" in names
    assert not [r for r in requires if r.startswith(("tap-meta-insights", "meta-sandbox"))]
    assert not [r for r in requires if r.startswith("aiohttp")], requires
