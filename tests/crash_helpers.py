"""Kill points for the crash-consistency tests, chosen by counting, and how to judge a rerun.

A *kill point* names one instant of a run by counting: the Nth Graph request (killed before
it is answered: during the pull, between two pages), the Nth ELIZA request (before it is
applied), the Nth ELIZA write (applied, response not sent: between a POST and its link
commit), or the Nth state-database commit (before it: inside a page or link transaction;
after it: between two transactions). Requests are counted by a hook on the sandbox's
loopback servers (:attr:`LoopbackServer.hook`), which SIGKILLs the child; commits by the
child itself through the ``DELTASYNC_FAILPOINT`` seam (:mod:`deltasync.state.failpoint`).
The range of each count comes from a clean run of the same step (:func:`measure`).

The verdict compares what ELIZA holds with what an uninterrupted history of the same tenant
gives, field by field, keyed by ``remote_key`` (ids and timestamps are not compared; a
reference to another object is compared by that object's key).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from e2e_helpers import sync
from sqlalchemy import Engine, event

from deltasync.config import Config
from deltasync.engine import RunReport
from deltasync.sandbox.eliza import ElizaSim
from deltasync.sandbox.server import Sandbox

REQUEST_KINDS = ("graph", "eliza", "eliza-write")
COMMIT_KINDS = ("before-commit", "after-commit")
KINDS = REQUEST_KINDS + COMMIT_KINDS
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
VOLATILE = frozenset({"id", "uuid", "created", "modified", "last_login"})


@dataclass(frozen=True)
class Point:
    kind: str  # one of KINDS
    n: int  # 1-based count of that kind within the run
    where: str = field(default="", compare=False)  # e.g. "groups page", "group POST"

    def __str__(self) -> str:
        return f"{self.kind}:{self.n}" + (f" ({self.where})" if self.where else "")


@dataclass
class Counts:
    """How many of each countable event one clean run made, and where the group round's
    events fell among them (1-based counts of their kind)."""

    graph: int
    eliza: int
    writes: int
    commits: int
    group_pages: list[int] = field(default_factory=list)  # Graph requests of /groups/delta
    member_commits: list[int] = field(default_factory=list)  # a page with members@delta
    group_posts: list[int] = field(default_factory=list)  # ELIZA writes: POST customgroup
    group_patches: list[int] = field(default_factory=list)  # ELIZA writes: a user's groups

    def group_points(self) -> list[Point]:
        """Points inside the group round: between groups pages (a later page's request),
        inside a page transaction holding ``members@delta``, a custom group's POST applied
        before its link commit, a user's ``groups`` PATCH applied, unanswered."""
        return [
            *(Point("graph", n, "between groups pages") for n in self.group_pages[1:]),
            *(
                Point("before-commit", n, "groups page with members@delta")
                for n in self.member_commits
            ),
            *(Point("eliza-write", n, "group POST before its link") for n in self.group_posts),
            *(Point("eliza-write", n, "user groups PATCH") for n in self.group_patches),
        ]

    def of(self, kind: str) -> int:
        return {
            "graph": self.graph,
            "eliza": self.eliza,
            "eliza-write": self.writes,
            "before-commit": self.commits,
            "after-commit": self.commits,
        }[kind]


class CommitCounter:
    """Counts the state commits made in this process (SQLAlchemy's ``commit`` event fires
    right before each one, as the failpoint seam counts them in the child)."""

    def __init__(self) -> None:
        self.n = 0
        event.listen(Engine, "commit", self._seen)

    def _seen(self, _conn: Any) -> None:
        self.n += 1

    def close(self) -> None:
        event.remove(Engine, "commit", self._seen)


def measure(sandbox: Sandbox, commits: CommitCounter, run: Callable[[], RunReport]) -> Counts:
    """Run ``run`` (a clean in-process sync of ``sandbox``) and count what it did, noting
    where the group round's pages, commits and writes fell."""
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    before = commits.n
    counts = Counts(0, 0, 0, 0)
    graph_seen = itertools.count(1)
    writes_seen = itertools.count(1)

    def on_graph(
        phase: str, request: httpx.Request, response: httpx.Response | None
    ) -> httpx.Response | None:
        if phase == "answered" and response is not None:
            n = next(graph_seen)
            if "/groups/delta" in request.url.path:
                counts.group_pages.append(n)
                if b"members@delta" in response.content:
                    # the client commits this page next; no other commit runs meanwhile
                    counts.member_commits.append(commits.n - before + 1)
        return None

    def on_eliza(
        phase: str, request: httpx.Request, response: httpx.Response | None
    ) -> httpx.Response | None:
        if phase == "received" and request.method in WRITE_METHODS:
            n = next(writes_seen)
            path = request.url.path
            if request.method == "POST" and path.rstrip("/").endswith("/customgroup"):
                counts.group_posts.append(n)
            elif request.method == "PATCH" and "/api/user/" in path and _sends_groups(request):
                counts.group_patches.append(n)
        return None

    sandbox.graph_server.hook, sandbox.eliza_server.hook = on_graph, on_eliza
    try:
        report = run()
    finally:
        sandbox.graph_server.hook = sandbox.eliza_server.hook = None
    assert report.exit_code == 0, report.as_dict()
    counts.graph = sandbox.graph.request_count
    counts.eliza = sandbox.eliza.request_count
    counts.writes = sandbox.eliza.write_count
    counts.commits = commits.n - before
    return counts


def _sends_groups(request: httpx.Request) -> bool:
    return "groups" in json.loads(request.content or b"{}")


def spread(total: int, k: int, rng: random.Random) -> list[int]:
    """``k`` distinct counts in 1..total, one per equal slice (all of them if k ≥ total)."""
    if total <= k:
        return list(range(1, total + 1))
    edges = [1 + (total * i) // k for i in range(k + 1)]
    return [rng.randrange(lo, max(lo + 1, hi)) for lo, hi in itertools.pairwise(edges)]


class KillSwitch:
    """Hooks on a sandbox's Graph and ELIZA servers: SIGKILL the child at the armed point.

    Once it fired, every later request of the dead child is refused unanswered-and-unapplied
    (a 503 no one reads), so "before it is applied" holds even for requests in flight.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self._lock = threading.Lock()
        self._point: Point | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = threading.Event()
        self._seen: Counter[str] = Counter()
        self.fired = False
        sandbox.graph_server.hook = self._graph
        sandbox.eliza_server.hook = self._eliza

    def arm(self, point: Point | None) -> None:
        with self._lock:
            self._point = point
            self._proc = None
            self._started.clear()
            self._seen.clear()
            self.fired = False

    def started(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._started.set()

    def disarm(self) -> None:
        with self._lock:
            self._point = None
            self.fired = False

    def _graph(
        self, phase: str, request: httpx.Request, response: httpx.Response | None
    ) -> httpx.Response | None:
        if phase == "received":
            return self._count("graph")
        return None

    def _eliza(
        self, phase: str, request: httpx.Request, response: httpx.Response | None
    ) -> httpx.Response | None:
        if phase == "received":
            return self._count("eliza")
        if request.method in WRITE_METHODS:
            self._count("eliza-write")
        return None

    def _count(self, kind: str) -> httpx.Response | None:
        with self._lock:
            if self._point is None:
                return None
            if self.fired:
                return httpx.Response(503)
            self._seen[kind] += 1
            if self._point != Point(kind, self._seen[kind]):
                return None
            self._started.wait(30)
            assert self._proc is not None
            os.kill(self._proc.pid, signal.SIGKILL)
            self.fired = True
            return httpx.Response(503)


@dataclass
class Child:
    """How to start ``python -m deltasync sync -c CFG`` quickly and quietly."""

    pycache: Path  # bytecode cache for the children (the suite runs with PYTHONDONTWRITEBYTECODE)
    logs: Path
    runs: int = 0

    def run(self, sandbox: Sandbox, switch: KillSwitch, point: Point) -> int:
        """Run the CLI until it ends or is killed at ``point``; its return code (-9 = killed)."""
        env = {**os.environ, **sandbox.env, "PYTHONPYCACHEPREFIX": str(self.pycache)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("DELTASYNC_FAILPOINT", None)
        if point.kind in COMMIT_KINDS:
            env["DELTASYNC_FAILPOINT"] = f"{point.kind}:{point.n}"
        switch.arm(point if point.kind in REQUEST_KINDS else None)
        self.runs += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{self.runs:03d}-{point.kind}-{point.n}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "deltasync", "sync", "-c", str(sandbox.config_path)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            switch.started(proc)
            try:
                rc = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                switch.disarm()
        return rc


@dataclass
class Recovery:
    """The rerun after a kill, as an administrator would do it: just ``sync`` again. The
    killed run's lease is taken over at once (its process on this host is gone); how many
    reruns did that is counted."""

    takeovers: int = 0

    def rerun(self, sandbox: Sandbox, config: Config) -> RunReport:
        report = sync(config)
        if any("took over the lease of" in w for w in report.warnings):
            self.takeovers += 1
        return report


def eliza_view(sim: ElizaSim) -> tuple[dict[str, Any], list[str]]:
    """What ELIZA holds, keyed by remote_key (username/email for unkeyed objects), and the
    keys found more than once (duplicates)."""
    users, persons = sim.users, sim.persons
    group_names = {gid: g["name"] for gid, g in sim.groups.items()}
    ukey = {i: u.get("remote_key") or f"username:{u['username']}" for i, u in users.items()}
    pkey = {
        i: p.get("remote_key") or f"person:{p.get('email')}:{p['vorname']}:{p['nachname']}"
        for i, p in persons.items()
    }
    dups: list[str] = []

    def keyed(rows: dict[int, dict[str, Any]], key: dict[int, str], kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, row in rows.items():
            clean = {k: v for k, v in row.items() if k not in VOLATILE}
            if kind == "user":
                clean["groups"] = sorted(str(group_names.get(g, g)) for g in row["groups"])
            if kind == "person":
                clean["user"] = ukey.get(row["user"], row["user"])
                clean["vorgesetzter"] = pkey.get(row["vorgesetzter"], row["vorgesetzter"])
            if key[i] in out:
                dups.append(f"{kind} {key[i]}")
            out[key[i]] = clean
        return out

    memberships = sorted(
        (pkey.get(m["mitarbeiter"], str(m["mitarbeiter"])), m["orgunit"], str(m["von"]), m)
        for m in sim.memberships.values()
    )
    custom = sim.customgroups
    view = {
        "user": keyed(users, ukey, "user"),
        "person": keyed(persons, pkey, "person"),
        "membership": [
            {**{k: v for k, v in m.items() if k not in VOLATILE}, "mitarbeiter": who}
            for who, _, _, m in memberships
        ],
        "customgroup": keyed(
            custom,
            {i: g.get("remote_key") or f"name:{g['name']}" for i, g in custom.items()},
            "customgroup",
        ),
    }
    return view, dups


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Readable differences between two :func:`eliza_view` views (empty = the same)."""
    out: list[str] = []
    for kind in want:
        g, w = got[kind], want[kind]
        if isinstance(w, list):
            if g != w:
                out.append(f"{kind}: {len(g)} rows, expected {len(w)}: {g} != {w}")
            continue
        for key in sorted(set(g) | set(w)):
            if key not in g:
                out.append(f"{kind} {key}: missing")
            elif key not in w:
                out.append(f"{kind} {key}: unexpected")
            else:
                for name in sorted(set(g[key]) | set(w[key])):
                    if g[key].get(name) != w[key].get(name):
                        out.append(
                            f"{kind} {key}.{name}: {g[key].get(name)!r}, "
                            f"expected {w[key].get(name)!r}"
                        )
    return out


USER_OPS = ("rename", "title", "disable", "enable", "new", "delete", "restore", "manager")
GROUP_OPS = ("join", "leave", "rename group", "new group")


class TenantChanges:
    """Seeded random tenant changes, applied identically to several sandboxes' tenants."""

    def __init__(self, seed: int, *, groups: bool = False) -> None:
        self.rng = random.Random(f"changes:{seed}")
        self.serial = 0
        self.groups = groups  # also change groups: members, names, new groups

    def step(self, reference: Sandbox, others: list[Sandbox]) -> list[str]:
        """Choose 1-3 changes from ``reference``'s tenant and apply them to all; their names."""
        done: list[str] = []
        for _ in range(self.rng.randint(1, 3)):
            graph = reference.graph
            users = sorted(graph.users(), key=lambda u: str(u["id"]))
            internal = [u for u in users if u.get("companyName")]
            enabled = [u for u in internal if u.get("accountEnabled")]
            disabled = [u for u in internal if not u.get("accountEnabled")]
            deleted = sorted(graph.deleted_users(), key=lambda u: str(u["id"]))
            op = self.rng.choice([*USER_OPS, *(GROUP_OPS if self.groups else ())])
            if op in GROUP_OPS:
                groups = sorted(graph.groups(), key=lambda g: str(g["id"]))
                calls = self._group_calls(op, enabled, groups)
            else:
                calls = self._calls(op, enabled, disabled, deleted)
            if calls is None:
                continue
            for box in (reference, *others):
                for name, args, kwargs in calls:
                    getattr(box.graph, name)(*args, **kwargs)
            name, args, kwargs = calls[0]
            subject = (
                args[0] if args else kwargs.get("userPrincipalName", kwargs.get("displayName"))
            )
            done.append(f"{name} {subject}")
        return done

    def _calls(
        self,
        op: str,
        enabled: list[dict[str, Any]],
        disabled: list[dict[str, Any]],
        deleted: list[dict[str, Any]],
    ) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]] | None:
        rng = self.rng
        self.serial += 1
        if op == "new" or not enabled:
            model = rng.choice(enabled) if enabled else None
            uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            given, surname = f"Neu{self.serial}", f"Person{self.serial}"
            upn = f"{given.lower()}.{surname.lower()}@firma.ch"
            props = {
                "id": uid,
                "userPrincipalName": upn,
                "mail": upn,
                "givenName": given,
                "surname": surname,
                "jobTitle": "Sachbearbeiter",
                "companyName": model.get("companyName") if model else "Firma AG",
                "department": model.get("department") if model else None,
            }
            return [("add_user", (), props)]
        who = rng.choice(enabled)
        uid = str(who["id"])
        if op == "rename":
            surname = f"{who.get('surname')}-Neu{self.serial}"
            upn = f"{str(who.get('givenName')).lower()}.n{self.serial}@firma.ch"
            props = {
                "surname": surname,
                "displayName": f"{who.get('givenName')} {surname}",
                "userPrincipalName": upn,
                "mail": upn,
            }
            return [("update_user", (uid,), props)]
        if op == "title":
            return [("update_user", (uid,), {"jobTitle": f"Funktion {self.serial}"})]
        if op == "disable":
            return [("disable_user", (uid,), {})]
        if op == "enable":
            return [("enable_user", (str(rng.choice(disabled)["id"]),), {})] if disabled else None
        if op == "delete":
            return [("soft_delete", (uid,), {})]
        if op == "restore":
            return [("restore", (str(rng.choice(deleted)["id"]),), {})] if deleted else None
        other = rng.choice(enabled)
        if other["id"] == who["id"]:
            return None
        return [("set_manager", (uid, str(other["id"])), {})]

    def _group_calls(
        self, op: str, enabled: list[dict[str, Any]], groups: list[dict[str, Any]]
    ) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]] | None:
        rng = self.rng
        self.serial += 1
        if op == "new group" or not groups:
            gid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            members = [str(u["id"]) for u in rng.sample(enabled, min(3, len(enabled)))]
            props = {"id": gid, "displayName": f"Projekt {self.serial}", "members": members}
            return [("add_group", (), props)]
        group = rng.choice(groups)
        gid = str(group["id"])
        members = set(group["members"])
        if op == "rename group":
            return [
                ("update_group", (gid,), {"displayName": f"{group['displayName']} {self.serial}"})
            ]
        if op == "join":
            outside = [u for u in enabled if u["id"] not in members]
            return [("add_member", (gid, str(rng.choice(outside)["id"])), {})] if outside else None
        users = sorted(m for m in members if m in {u["id"] for u in enabled})
        return [("remove_member", (gid, rng.choice(users)), {})] if users else None
