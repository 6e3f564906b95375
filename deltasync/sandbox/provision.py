"""What a fresh sandbox holds besides the tenant: ELIZA's starting data and the config file.

ELIZA starts with org units for the tenant's companies and two hand-made users the sync must
not touch; the config file points deltasync at the running servers and names the secrets
only as ``${VAR}`` references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from deltasync.sandbox.eliza import ElizaSim
from deltasync.sandbox.graph import GraphSim
from deltasync.sandbox.graph import tenant_data as td

CLIENT_SECRET_VAR: Final = "DELTASYNC_SANDBOX_CLIENT_SECRET"
ELIZA_TOKEN_VAR: Final = "DELTASYNC_SANDBOX_API_TOKEN"
SANDBOX_TENANT: Final = "sandbox-tenant"
SANDBOX_CLIENT: Final = "sandbox-client"


def seed_eliza(eliza: ElizaSim, graph: GraphSim) -> dict[str, int]:
    """Org units for the tenant's companies, plus two hand-made users the sync must not touch."""
    present = {u.get("companyName") for u in graph.users()}
    root = eliza.add_orgunit("Firma-Gruppe")
    mapping: dict[str, int] = {}
    for company in td.COMPANIES:
        if company in present:
            mapping[company] = int(eliza.add_orgunit(company, parent=int(root["id"]))["id"])
    entra_addresses = {
        str(u.get(key) or "").lower()
        for u in graph.users()
        for key in ("userPrincipalName", "mail")
    }
    admin_mail, reception_mail = "it-admin@firma.ch", "empfang@firma.ch"
    if {admin_mail, reception_mail} & entra_addresses:  # pragma: no cover - names are first.last
        raise RuntimeError("a hand-made ELIZA user collides with an Entra user")
    eliza.add_user(
        username="eliza-admin",
        email=admin_mail,
        first_name="ELIZA",
        last_name="Administrator",
        is_active=True,
        is_superuser=True,
        groups=[1, 2],
    )
    eliza.add_user(
        username="empfang",
        email=reception_mail,
        first_name="Empfang",
        last_name="Firma AG",
        is_active=True,
        groups=[1],
    )
    return mapping


def config_text(
    *,
    authority: str,
    graph_url: str,
    ca_bundle: Path,
    eliza_url: str,
    orgunit_mapping: dict[str, int],
    sync_groups: bool = False,
) -> str:
    """The sandbox's ``entra_sync.yaml``: every address real, every secret a ``${VAR}``."""
    config: dict[str, Any] = {
        "entra": {
            "tenant_id": SANDBOX_TENANT,
            "client_id": SANDBOX_CLIENT,
            "client_secret": f"${{{CLIENT_SECRET_VAR}}}",
            "authority_host": authority,
            "graph_url": graph_url,
            "ca_bundle": str(ca_bundle),
        },
        "eliza": {
            "base_url": eliza_url,
            "api_token": f"${{{ELIZA_TOKEN_VAR}}}",
        },
        "sync_options": {
            "create_users": True,
            "update_users": True,
            "create_mitarbeitende": True,
            "update_mitarbeitende": True,
            "sync_groups": sync_groups,
        },
        "orgunit_mapping": orgunit_mapping,
        "advanced": {
            "user_filter": "accountEnabled eq true",
            "excluded_domains": [f"{td.EXTERNAL_SUBDOMAIN}.firma.ch"],
        },
        "state": {"url": "sqlite:///state/deltasync.db"},
    }
    header = (
        "# deltasync sandbox: simulated Entra ID (Graph + token endpoint) and ELIZA on loopback.\n"
        f"# The secrets come from the environment ({CLIENT_SECRET_VAR}, {ELIZA_TOKEN_VAR});\n"
        "# `source sandbox.env` sets them when the sandbox wrote that file.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def set_deactivation_percent(config_path: Path, percent: float, why: str) -> None:
    """Write ``deprovisioning.max_deactivation_percent`` into a sandbox config, saying why."""
    text = config_path.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    data = yaml.safe_load(text)
    data.setdefault("deprovisioning", {})["max_deactivation_percent"] = percent
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    config_path.write_text(f"{header}# {why}\n{body}", encoding="utf-8")
