"""Helpers for tests that drive whole runs against the loopback sandbox."""

from __future__ import annotations

import dataclasses
from typing import Any

from deltasync import service
from deltasync.config import Config
from deltasync.engine import RunOptions, RunReport
from deltasync.sandbox.server import Sandbox

EXTERNAL = "external.firma.ch"


NO_SEAMS = service.Seams()


def sync(config: Config, seams: service.Seams = NO_SEAMS, **kw: Any) -> RunReport:
    flag_names = {f.name for f in dataclasses.fields(service.SyncFlags)}
    flags = service.SyncFlags(**{k: kw.pop(k) for k in list(kw) if k in flag_names})
    return service.run_sync(config, RunOptions(**kw), flags, seams=seams)


def in_scope(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The Entra users the sandbox config syncs, by UPN."""
    users = [
        u
        for u in sandbox.graph.users()
        if u.get("accountEnabled") and not str(u["userPrincipalName"]).endswith(EXTERNAL)
    ]
    return sorted(users, key=lambda u: str(u["userPrincipalName"]))


def writes(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.eliza.requests if r.method != "GET"]


def eliza_user_of(sandbox: Sandbox, entra_id: str) -> list[dict[str, Any]]:
    return [u for u in sandbox.eliza.users.values() if u.get("remote_key") == entra_id]


def eliza_person_of(sandbox: Sandbox, entra_id: str) -> list[dict[str, Any]]:
    return [p for p in sandbox.eliza.persons.values() if p.get("remote_key") == entra_id]


def pick(sandbox: Sandbox, n: int = 1) -> list[dict[str, Any]]:
    users = sorted(in_scope(sandbox), key=lambda u: str(u["userPrincipalName"]))
    return [u for u in users if u.get("jobTitle")][:n]
