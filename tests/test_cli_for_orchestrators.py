"""What other programs (the Dagster code location) use of `meta-elt`: the registry as JSON,
`sync --account` for one account of one tenant, and `--no-build` (extract and load only)."""

from __future__ import annotations

import json

import pytest
import yaml

from meta_elt import cli
from tests.support import run_cli

TENANT_A = "6a0f5c1e-2b7d-4c3a-9e1f-0d4b8a7c6e21"
TENANT_B = "9d3b7e42-5f18-4a6c-b0d2-7c1e9f4a3b58"


def test_tenants_list_json_is_the_validated_registry(tmp_path):
    registry = tmp_path / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "id": TENANT_A,
                        "name": "A",
                        "token_env": "TOK_A",
                        "accounts": ["123", "act_4"],
                    },
                    {"id": TENANT_B.upper(), "name": "B", "token_env": "TOK_B", "accounts": [5]},
                ]
            }
        )
    )
    done = run_cli("tenants", "list", "--json", env={"META_ELT_TENANTS": str(registry), "PATH": ""})
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document == {
        "tenants": [
            {"id": TENANT_A, "name": "A", "token_env": "TOK_A", "accounts": ["act_123", "act_4"],
             "start_date": None},
            {"id": TENANT_B, "name": "B", "token_env": "TOK_B", "accounts": ["act_5"],
             "start_date": None},
        ]
    }  # fmt: skip


def test_tenants_list_bad_registry_is_one_line_exit_2(tmp_path):
    registry = tmp_path / "tenants.yml"
    registry.write_text(
        yaml.safe_dump({"tenants": [{"id": "nope", "token_env": "T", "accounts": [1]}]})
    )
    done = run_cli("tenants", "list", "--json", env={"META_ELT_TENANTS": str(registry), "PATH": ""})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'nope' is not a UUID" in lines[0], lines


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--all", "--account", "act_100001"], "needs exactly one --tenant"),
        (["--tenant", TENANT_A, "--tenant", TENANT_B, "--account", "1"], "exactly one --tenant"),
        (["--tenant", TENANT_A, "--account", "act_100003"], "belongs to tenant " + TENANT_B),
        (["--tenant", TENANT_A, "--account", "act_x"], "is not a Meta ad account id"),
    ],
)
def test_sync_account_bad_input_exits_2_with_one_line(args, problem):
    done = run_cli("sync", *args, "--no-build")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meta-elt: error: --account:"), lines
    assert problem in lines[0]


def test_no_build_is_offered_by_backfill_and_sync():
    parser = cli.build_parser()
    backfill = parser.parse_args(
        ["backfill", "--tenant", TENANT_A, "--account", "1", "--since", "2026-01-01",
         "--until", "2026-01-02", "--no-build"]
    )  # fmt: skip
    assert backfill.no_build is True
    sync = parser.parse_args(["sync", "--tenant", TENANT_A, "--account", "1", "--no-build"])
    assert sync.no_build is True and sync.account == "1"
    assert parser.parse_args(["sync", "--all"]).no_build is False
