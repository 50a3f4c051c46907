"""The tenants registry, read through `meta-elt tenants list --json` (one parser and one set of
checks: meta-elt's), and the partition keys of tenant-accounts."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from meta_elt_dagster.project import meta_elt_command

#: A tenant-account partition key: ``<tenant id>:act_<digits>``.
_KEY = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(act_[0-9]+)$")


class RegistryUnavailable(RuntimeError):
    """The registry could not be read (one line: meta-elt's own error)."""


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    token_env: str
    accounts: tuple[str, ...]


def account_key(tenant_id: str, account: str) -> str:
    return f"{tenant_id}:{account}"


def parse_account_key(key: str) -> tuple[str, str]:
    """(tenant id, account) of a tenant-account partition key."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(
            f"partition {key!r} is not <tenant uuid>:act_<digits>; pick a partition the "
            "registry sensor created"
        )
    return match.group(1), match.group(2)


def load(root: Path) -> list[Tenant]:
    done = subprocess.run(
        [*meta_elt_command(root), "tenants", "list", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RegistryUnavailable(lines[-1] if lines else f"meta-elt exited {done.returncode}")
    document = json.loads(done.stdout)
    return [
        Tenant(t["id"], t["name"], t["token_env"], tuple(t["accounts"]))
        for t in document["tenants"]
    ]


def account_keys(tenants: list[Tenant]) -> list[str]:
    return [account_key(t.id, a) for t in tenants for a in t.accounts]
