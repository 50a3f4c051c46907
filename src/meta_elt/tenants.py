"""The tenants registry: tenants, their ad accounts, and where each tenant's token lives.

The registry is a YAML file (``orchestrate/tenants.yml``, or the file named by
``META_ELT_TENANTS``). Tokens are never in it: each tenant names the environment variable that
holds its Meta access token.

A tenant's identity and routing (its id, accounts, token and the API it talks to) come from the
registry's own fields and from meta-elt, never from ``settings:``: a settings block that tries to
set them is refused, as is a key the tap does not declare (Meltano would drop it silently) and a
value of the wrong type. Each error is one line naming the file, the tenant and the key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meta_elt import inputs

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_FIELDS = ["id", "name", "token_env", "accounts", "start_date", "settings"]

#: Settings a tenant's ``settings:`` may not set, and where each comes from instead.
IDENTITY_SETTINGS = {
    "tenant_id": "the tenant's 'id' field",
    "account_ids": "the tenant's 'accounts' field",
    "access_token": "the variable named by the tenant's 'token_env' field",
    "access_token_file": "the variable named by the tenant's 'token_env' field",
    "api_url": "the TAP_FACEBOOK_API_URL environment variable (one API for every tenant)",
    "start_date": "the tenant's 'start_date' field (sync) or --since (backfill)",
    "end_date": "meta-elt (today for a sync, --until for a backfill)",
}

#: The extractor's declared settings: where the allowed keys and their kinds are read from.
EXTRACTOR_FILE = Path("extract") / "extractors.meltano.yml"


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


def tap_settings(root: Path) -> list[dict]:
    """The settings the extractor ``tap-facebook`` declares (name, kind, value...): the one list
    of them, read by the registry check and by `tenants check` (API URL and version)."""
    data = yaml.safe_load((root / EXTRACTOR_FILE).read_text()) or {}
    extractors = (data.get("plugins") or {}).get("extractors") or []
    tap = next(p for p in extractors if p.get("name") == "tap-facebook")
    return list(tap.get("settings") or [])


def tap_setting_kinds(root: Path) -> dict[str, str]:
    """Setting name → Meltano ``kind`` of every setting the extractor declares."""
    return {s["name"]: str(s.get("kind") or "string") for s in tap_settings(root)}


def _kind_ok(kind: str, value: object) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    # string-like kinds (string, and numbers Meltano passes as strings: job_timeout, ...)
    return isinstance(value, str | int | float) and not isinstance(value, bool)


_KIND_HINT = {
    "integer": "a whole number, 0 or more",
    "boolean": "true or false",
    "array": "a YAML list",
    "object": "a YAML mapping",
}


def check_settings(settings: object, kinds: Mapping[str, str], where: str) -> dict[str, object]:
    """A tenant's ``settings:`` block, checked against the tap's declared settings."""
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise RegistryError(f"{where} settings: expected a mapping of tap-facebook settings")
    for key, value in settings.items():
        if key in IDENTITY_SETTINGS:
            raise RegistryError(
                f"{where} settings.{key}: identity and routing cannot be set per tenant; "
                f"it comes from {IDENTITY_SETTINGS[key]}"
            )
        if key not in kinds:
            close = difflib.get_close_matches(str(key), list(kinds), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see extract/extractors.meltano.yml"
            raise RegistryError(f"{where} settings.{key}: not a tap-facebook setting; {hint}")
        kind = kinds[key]
        if not _kind_ok(kind, value):
            raise RegistryError(
                f"{where} settings.{key}: {value!r} is not {_KIND_HINT.get(kind, 'a string')}"
            )
    return dict(settings)


def _read(path: Path) -> object:
    if not path.exists():
        raise RegistryError(
            f"tenants registry {path} not found; create it (see README.md, Tenants) "
            "or point META_ELT_TENANTS at one"
        )
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc).split())
        raise RegistryError(
            f"tenants registry {path} is not valid YAML{where}: {problem}; fix the file"
        ) from None
    except (yaml.YAMLError, ValueError) as exc:  # e.g. a date like 2026-02-30
        reason = " ".join(str(exc).split())
        raise RegistryError(
            f"tenants registry {path} cannot be read: {reason}; fix the file "
            "(dates are YYYY-MM-DD and real)"
        ) from None


def load(path: Path, root: Path) -> dict[str, Tenant]:
    """Tenants by id, validated (settings against the tap's declared settings in ``root``)."""
    data = _read(path)
    kinds = tap_setting_kinds(root)
    entries = data.get("tenants") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise RegistryError(f"tenants registry {path}: expected a top-level 'tenants:' list")
    tenants: dict[str, Tenant] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"{path} tenant #{position}"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected a mapping with id, name, token_env, accounts")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), _FIELDS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"use {', '.join(_FIELDS)}"
            raise RegistryError(f"{where}: unknown field '{unknown[0]}'; {hint}")
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
        if len(set(accounts)) != len(accounts):
            raise RegistryError(f"{where}: an account is listed twice under 'accounts:'")
        if tenant_id in tenants:
            raise RegistryError(f"{where}: tenant id {tenant_id} appears twice")
        tenants[tenant_id] = Tenant(
            id=tenant_id,
            name=str(entry.get("name") or tenant_id),
            token_env=token_env,
            accounts=accounts,
            start_date=start_date,
            settings=check_settings(entry.get("settings"), kinds, where),
        )
    return tenants


def token_variables(registry: Mapping[str, Tenant]) -> set[str]:
    """Every tenant's token variable (stripped from what a run's processes inherit)."""
    return {t.token_env for t in registry.values()}


def shared_accounts(registry: Mapping[str, Tenant]) -> dict[str, list[Tenant]]:
    """Accounts listed under more than one tenant (normal: an agency and its client)."""
    owners: dict[str, list[Tenant]] = {}
    for tenant in registry.values():
        for account in tenant.accounts:
            owners.setdefault(account, []).append(tenant)
    return {a: ts for a, ts in owners.items() if len(ts) > 1}


def find(registry: Mapping[str, Tenant], value: str, name: str = "--tenant") -> Tenant:
    """The tenant a command names, by id; a name or a near miss gets a did-you-mean."""
    wanted = str(value).strip()
    by_name = [t for t in registry.values() if t.name.casefold() == wanted.casefold()]
    if by_name:
        tenant = by_name[0]
        raise inputs.BadInput(
            name,
            f"{wanted!r} is the name of tenant {tenant.id}, not its id",
            f"did you mean {name} {tenant.id}?",
        )
    tenant_id = inputs.tenant_id(wanted, name)
    if tenant_id in registry:
        return registry[tenant_id]
    close = difflib.get_close_matches(tenant_id, list(registry), n=1, cutoff=0.8)
    fix = (
        f"did you mean {close[0]} ({registry[close[0]].name})?"
        if close
        else "add it to orchestrate/tenants.yml (or the file in META_ELT_TENANTS)"
    )
    raise inputs.BadInput(name, f"{tenant_id} is not in the tenants registry", fix)


def account_of(
    registry: Mapping[str, Tenant], tenant: Tenant, account: str, name: str = "--account"
) -> str:
    """``account`` when it is one of ``tenant``'s; else which tenant it belongs to, or a near
    miss among the tenant's accounts."""
    if account in tenant.accounts:
        return account
    owners = [t for t in registry.values() if account in t.accounts]
    if owners:
        names = ", ".join(f"{t.id} ({t.name})" for t in owners)
        raise inputs.BadInput(
            name,
            f"{account} belongs to tenant {names}, not to {tenant.id} ({tenant.name})",
            "use that tenant's id, or add the account to this tenant's accounts in the registry",
        )
    close = difflib.get_close_matches(account, list(tenant.accounts), n=1, cutoff=0.75)
    fix = (
        f"did you mean {close[0]}?"
        if close
        else f"use one of {', '.join(tenant.accounts)}, or add it to the tenant's accounts"
    )
    raise inputs.BadInput(
        name, f"{account} is not an account of tenant {tenant.id} ({tenant.name})", fix
    )
