"""The naive baseline of bench_scale.py: what a sync without delta or memory costs.

It does what ELIZA's own Entra tool does on every run: read every user from Graph (``GET
/users``, no delta), look each one up in ELIZA, and write each one whole (user, then person),
whether anything changed or not. It gets the same ``max_concurrency`` as deltasync, so the
comparison is of the method, not of parallelism. Run by bench_scale.py as a child process::

    python tests/benchmarks/naive_sync.py CONFIG   # prints one JSON line of counts

It knows only the sandbox's config and the default field mapping; it is a yardstick, not a
product.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

SELECT = (
    "id,userPrincipalName,mail,givenName,surname,accountEnabled,mobilePhone,jobTitle,department"
)


class Counts:
    """Requests and writes, counted across the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.graph = 0
        self.eliza = 0
        self.writes = 0

    def add(self, *, graph: int = 0, eliza: int = 0, writes: int = 0) -> None:
        with self.lock:
            self.graph += graph
            self.eliza += eliza
            self.writes += writes


def _expand(value: str) -> str:
    return os.path.expandvars(value)


def main(config_path: Path) -> dict[str, int]:
    cfg = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    entra, eliza = cfg["entra"], cfg["eliza"]
    counts = Counts()
    graph_url = entra["graph_url"].rstrip("/")
    scope = httpx.URL(graph_url).copy_with(path="/").join("/.default")
    with httpx.Client(verify=entra["ca_bundle"]) as auth:
        token = auth.post(
            f"{entra['authority_host']}/{entra['tenant_id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": entra["client_id"],
                "client_secret": _expand(entra["client_secret"]),
                "scope": str(scope),
            },
        ).json()["access_token"]
    users: list[dict[str, Any]] = []
    excluded = tuple(f"@{d}" for d in cfg["advanced"].get("excluded_domains", []))
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as graph:
        url: str | None = f"{graph_url}/users?$select={SELECT}&$top=999"
        while url:
            page = graph.get(url).json()
            counts.add(graph=1)
            users.extend(
                u
                for u in page["value"]
                if u.get("accountEnabled") and not str(u["userPrincipalName"]).endswith(excluded)
            )
            url = page.get("@odata.nextLink")
    limits = httpx.Limits(max_connections=int(eliza.get("max_concurrency", 8)))
    headers = {"Authorization": f"Token {_expand(eliza['api_token'])}"}
    with (
        httpx.Client(base_url=f"{eliza['base_url']}/api", headers=headers, limits=limits) as http,
        ThreadPoolExecutor(int(eliza.get("max_concurrency", 8))) as pool,
    ):
        list(pool.map(lambda u: _push_one(http, counts, u), users))
    return {"graph": counts.graph, "eliza": counts.eliza, "writes": counts.writes}


def _upsert(
    http: httpx.Client, counts: Counts, path: str, lookup: dict[str, str], body: dict[str, Any]
) -> int:
    """Look the object up, then PUT it whole (or POST it); returns its id."""
    found = http.get(path, params=lookup).json()
    if found:
        response = http.put(f"{path}/{found[0]['id']}", json=body)
    else:
        response = http.post(path, json=body)
    counts.add(eliza=2, writes=1)
    return int(response.json()["id"])


def _push_one(http: httpx.Client, counts: Counts, u: dict[str, Any]) -> None:
    user = {
        "username": u["userPrincipalName"],
        "email": u.get("mail"),
        "first_name": u.get("givenName") or "",
        "last_name": u.get("surname") or "",
        "remote_key": u["id"],
        "is_active": True,
    }
    user_id = _upsert(http, counts, "/user", {"username": u["userPrincipalName"]}, user)
    person = {
        "vorname": u.get("givenName") or "-",
        "nachname": u.get("surname") or "-",
        "email": u.get("mail"),
        "telefon": u.get("mobilePhone"),
        "position": u.get("jobTitle"),
        "abteilung": u.get("department"),
        "user": user_id,
        "remote_key": u["id"],
    }
    _upsert(http, counts, "/organisation/mitarbeitende", {"remote_key": u["id"]}, person)


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
