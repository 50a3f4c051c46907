"""The tenants registry: tenants, their ad accounts, and where each tenant's token lives.

The registry is a YAML file (``orchestrate/tenants.yml``, or the file named by
``META_ELT_TENANTS``). Tokens are never in it: each tenant names the environment variable that
holds its Meta access token.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meta_elt import inputs

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class RegistryError(ValueError):
    """The registry file is missing or malformed (one line, names the file and the fix)."""


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    token_env: str
    accounts: tuple[str, ...]
    start_date: dt.date | None = None
    settings: dict[str, object] = field(default_factory=dict)

    def token(self) -> str | None:
        return os.environ.get(self.token_env) or None


def registry_path(root: Path) -> Path:
    return Path(os.environ.get("META_ELT_TENANTS") or root / "orchestrate" / "tenants.yml")


def load(path: Path) -> dict[str, Tenant]:
    """Tenants by id, validated."""
    if not path.exists():
        raise RegistryError(
            f"tenants registry {path} not found; create it (see orchestrate/README.md) "
            "or point META_ELT_TENANTS at one"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"tenants registry {path} is not valid YAML: {exc}") from None
    entries = data.get("tenants") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise RegistryError(f"tenants registry {path}: expected a top-level 'tenants:' list")
    tenants: dict[str, Tenant] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"{path} tenant #{position}"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected a mapping with id, name, token_env, accounts")
        try:
            tenant_id = inputs.tenant_id(str(entry.get("id", "")), f"{where} id")
            accounts = tuple(
                inputs.account_id(str(a), f"{where} accounts") for a in entry.get("accounts") or []
            )
            start = entry.get("start_date")
            start_date = inputs.date(str(start), f"{where} start_date") if start else None
        except inputs.BadInput as exc:
            raise RegistryError(str(exc)) from None
        token_env = str(entry.get("token_env", ""))
        if not _ENV_NAME.match(token_env):
            raise RegistryError(
                f"{where}: token_env {token_env!r} must name an environment variable "
                "(A-Z, 0-9, _), e.g. META_TOKEN_ACME"
            )
        if not accounts:
            raise RegistryError(f"{where}: list the tenant's ad accounts under 'accounts:'")
        if tenant_id in tenants:
            raise RegistryError(f"{where}: tenant id {tenant_id} appears twice")
        tenants[tenant_id] = Tenant(
            id=tenant_id,
            name=str(entry.get("name") or tenant_id),
            token_env=token_env,
            accounts=accounts,
            start_date=start_date,
            settings=dict(entry.get("settings") or {}),
        )
    return tenants
