"""deltasync at scale against a naive sync: wall, CPU, peak RSS and requests, beside the targets.

The sandbox (simulated Graph, token endpoint and ELIZA, ``start_sandbox`` as ``sandbox serve``
runs it) serves on loopback from this process; every sync is the real ``deltasync`` CLI in a
child process, so its wall time includes interpreter start and token, and its CPU time and
peak RSS (``os.wait4``) are the sync's own. ELIZA answers after ``--latency-ms`` (20 ms),
requests overlapping as on a real server. It is not part of the test suite. Run it as::

    uv run python tests/benchmarks/bench_scale.py [--users 1000 20000 100000] \
        [--no-postgres | --no-sqlite]

The default size (5,000 users) takes about five minutes on two cores; 100,000 users about 45
minutes. Per size and state backend (SQLite, and PostgreSQL on 127.0.0.1:5432 in a throwaway
database), with group sync on and ``--groups`` project groups (default: one per 50 users, so
2,000 at 100,000): initial sync, idle run, 1 % of users change their jobTitle, 1 % disabled,
one project group gains a member and loses one, the delta token expired with nothing
changed, ``resync`` with no difference; then ``state`` and ``state user``. The naive baseline
(``naive_sync.py``: every user from ``GET /users``, looked up and written whole) runs once
per size, on the SQLite sandbox after deltasync's scenarios: it does the same requests on
every run, so its one figure stands beside every scenario (the ratio column: naive ÷
deltasync). Every figure is printed beside its target; ``--markdown FILE`` keeps the table
(the README's), ``--json FILE`` every figure. Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deltasync.sandbox.server import Sandbox, start_sandbox

HERE = Path(__file__).resolve().parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
EXTERNAL_SUFFIX = "@external.firma.ch"
RSS_LIMIT_MB = 300.0
IDLE_WALL_S = 1.5
STATE_WALL_S = 0.6


@dataclass
class Figure:
    """One child process: what it cost and what went over the wire."""

    size: int
    backend: str
    scenario: str
    wall_s: float
    cpu_s: float
    rss_mb: float
    graph: int
    eliza: int
    writes: int
    exit_code: int
    push_s: float | None = None
    target: str = ""
    ok: bool | None = None
    naive: dict[str, float] = field(default_factory=dict)


# The children are started by this small process, forked before the sandbox fills the
# bench's memory: on Linux a child's peak RSS (``ru_maxrss``) includes the RSS of the process
# it was forked from, so children of the bench itself would all report the sandbox's size.
_SPAWNER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(job["argv"], stdout=out, stderr=err, env=job["env"])
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps([wall, cpu, usage.ru_maxrss / 1024, code]), flush=True)
"""


class Spawner:
    """A small process that runs each child and reports its wall, CPU and peak RSS."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
        """(wall s, CPU s, peak RSS MB, exit code, stdout) of one child process."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "out", Path(tmp) / "err"
            job = {"argv": argv, "env": env, "out": str(out), "err": str(err)}
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            wall, cpu, rss, code = json.loads(self.proc.stdout.readline())
            text = out.read_text(encoding="utf-8", errors="replace")
            if code not in (0, 3, 4):
                sys.stderr.write(err.read_text(encoding="utf-8", errors="replace")[-3000:])
        return wall, cpu, rss, int(code), text

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


SPAWNER: Spawner | None = None


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, peak RSS MB, exit code, stdout) of one child, through the spawner."""
    assert SPAWNER is not None
    return SPAWNER.run(argv, env)


class Bench:
    """One sandbox, one config, and the counters read around each child."""

    def __init__(self, sb: Sandbox, config: Path, size: int, backend: str) -> None:
        self.sb, self.config, self.size, self.backend = sb, config, size, backend
        self.env = child_env(sb)

    def run(self, scenario: str, *args: str) -> Figure:
        self.sb.graph.reset_log()
        self.sb.eliza.reset_log()
        argv = [sys.executable, "-m", "deltasync", *args, "-c", str(self.config)]
        wall, cpu, rss, code, text = run_child(argv, self.env)
        push = None
        if "--json" in args and text.strip():
            push = json.loads(text).get("timings", {}).get("push")
        fig = Figure(
            self.size,
            self.backend,
            scenario,
            wall,
            cpu,
            rss,
            self.sb.graph.request_count,
            self.sb.eliza.request_count,
            self.sb.eliza.write_count,
            code,
            push,
        )
        print(
            f"  {self.backend:<6} {scenario:<18} {wall:7.2f}s cpu {cpu:6.2f}s rss {rss:5.0f} MB"
            f"  graph {fig.graph:>5}  eliza {fig.eliza:>6} ({fig.writes} writes)  exit {code}",
            flush=True,
        )
        return fig

    def sync(self, scenario: str, *extra: str) -> Figure:
        return self.run(scenario, "sync", "--json", *extra)

    def written_objects(self) -> int:
        """Distinct ELIZA objects the last run wrote (from the bounded request log)."""
        return len({r.path for r in self.sb.eliza.requests if r.method != "GET"})


def child_env(sb: Sandbox) -> dict[str, str]:
    """The sandbox's secrets, and byte-code caching on as in an installed deltasync.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in this shared dev environment) every child
    compiles ~2,800 modules from source: 4-6 s of CPU that no installed copy pays.
    """
    env = {**os.environ, **sb.env}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def in_scope(sb: Sandbox) -> list[dict[str, Any]]:
    return [
        u
        for u in sb.graph.users()
        if u.get("accountEnabled") and not str(u["userPrincipalName"]).endswith(EXTERNAL_SUFFIX)
    ]


@contextmanager
def sandbox(size: int, args: argparse.Namespace, tmp: Path) -> Iterator[Sandbox]:
    started = time.perf_counter()
    sb = start_sandbox(
        tmp,
        users=size,
        seed=args.seed,
        eliza_latency_ms=args.latency_ms,
        eliza_log_limit=50_000,
        groups=args.groups if args.groups is not None else max(1, size // 50),
        sync_groups=not args.no_groups,
    )
    gc.freeze()  # as `sandbox serve` does: the seeded tenant is never garbage
    print(f"  sandbox of {size} users ready in {time.perf_counter() - started:.1f}s", flush=True)
    try:
        yield sb
    finally:
        sb.stop()
        gc.unfreeze()
        gc.collect()


def write_config(sb: Sandbox, state_url: str | None, concurrency: int) -> Path:
    data = yaml.safe_load(sb.config_path.read_text(encoding="utf-8"))
    data["eliza"]["max_concurrency"] = concurrency
    if state_url is not None:
        data["state"]["url"] = state_url
    path = sb.workdir / f"bench-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def pg_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"deltasync_scale_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def scenarios(b: Bench, args: argparse.Namespace) -> list[Figure]:
    """Every scenario in order on one sandbox and state backend."""
    rng = random.Random(args.seed)
    bound_per_write = args.latency_ms / 1000 / args.concurrency
    figs: list[Figure] = []
    f = b.sync("initial sync")
    bound = 1.5 * f.writes * bound_per_write
    f.target = (
        f"push ≤ {bound:.1f}s (1.5 × {f.writes} writes × {args.latency_ms:g} ms ÷ "
        f"{args.concurrency}); CPU {1000 * f.cpu_s / max(1, f.writes):.2f} ms per write"
    )
    f.ok = f.push_s is not None and f.push_s <= bound and f.rss_mb < RSS_LIMIT_MB
    figs.append(f)
    f = b.sync("idle run")
    resources = 1 if args.no_groups else 2
    f.target = f"graph = {resources}, eliza = 0, wall < {IDLE_WALL_S}s"
    f.ok = f.graph == resources and f.eliza == 0 and f.wall_s < IDLE_WALL_S
    figs.append(f)
    users = sorted(in_scope(b.sb), key=lambda u: str(u["id"]))
    n = max(1, round(len(users) * 0.01))
    picked = rng.sample([u for u in users if u.get("jobTitle")], n)
    for u in picked:
        b.sb.graph.update_user(u["id"], jobTitle=f"{u['jobTitle']} (neu)")
    f = b.sync("1 % changed")
    f.target = f"writes = {n} changed persons"
    f.ok = f.writes == n
    figs.append(f)
    done = {u["id"] for u in picked}
    leavers = rng.sample([u for u in users if u["id"] not in done], n)
    for u in leavers:
        b.sb.graph.disable_user(u["id"])
    f = b.sync("1 % disabled", "--allow-deletes")
    objects = b.written_objects()
    f.target = f"writes = {objects} objects written (user, person, membership each once)"
    f.ok = f.writes == objects
    figs.append(f)
    group_change(b, rng, {u["id"] for u in users} - {u["id"] for u in leavers}, figs, args)
    b.sb.graph.expire_tokens()
    f = b.sync("token expired")
    f.target = "eliza writes = 0"
    f.ok = f.writes == 0
    figs.append(f)
    f = b.run("resync, no diff", "resync", "--json")
    f.target = "eliza writes = 0"
    f.ok = f.writes == 0
    figs.append(f)
    for name, argv in (("state", ["state"]), ("state user", ["state", "user", picked[0]["id"]])):
        f = b.run(name, *argv)
        f.target = f"wall < {STATE_WALL_S}s"
        f.ok = f.wall_s < STATE_WALL_S
        figs.append(f)
    for f in figs:
        if f.scenario.startswith("state"):
            continue
        f.ok = bool(f.ok) and f.rss_mb < RSS_LIMIT_MB and f.exit_code == 0
        f.target += f", rss < {RSS_LIMIT_MB:.0f} MB"
    return figs


def group_change(
    b: Bench, rng: random.Random, active: set[str], figs: list[Figure], args: argparse.Namespace
) -> None:
    """One project group gains an in-scope user and loses one: those two users' groups change."""
    if args.no_groups:
        return
    projects = [g for g in b.sb.graph.groups() if str(g["displayName"]).startswith("Projekt")]
    group = rng.choice(sorted(projects, key=lambda g: str(g["id"])))
    members = set(group["members"])
    leaving = rng.choice(sorted(members & active))
    joining = rng.choice(sorted(active - members))
    b.sb.graph.add_member(group["id"], joining)
    b.sb.graph.remove_member(group["id"], leaving)
    f = b.sync("group membership")
    f.target = "writes = 2 (the user who joined, the one who left)"
    f.ok = f.writes == 2
    figs.append(f)


def naive(b: Bench, args: argparse.Namespace) -> dict[str, float]:
    """The naive baseline once, on the same sandbox after deltasync's scenarios.

    It does the same work on every run (look every user up, write each one whole: a POST
    into an empty ELIZA, a PUT into a full one, the same number of requests), so one run is
    the yardstick of every scenario; a second on a fresh sandbox would double the time.
    """
    b.sb.graph.reset_log()
    b.sb.eliza.reset_log()
    argv = [sys.executable, str(HERE / "naive_sync.py"), str(b.config)]
    wall, cpu, rss, code, _ = run_child(argv, b.env)
    fig = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}
    fig |= {"graph": b.sb.graph.request_count, "eliza": b.sb.eliza.request_count}
    fig |= {"writes": b.sb.eliza.write_count, "exit": code}
    print(
        f"  naive  {'every run':<18} {wall:7.2f}s cpu {cpu:6.2f}s rss {rss:5.0f} MB"
        f"  graph {fig['graph']:>5}  eliza {fig['eliza']:>6} ({fig['writes']:.0f} writes)",
        flush=True,
    )
    return fig


def compare(figs: list[Figure], base: dict[str, float], size: int) -> None:
    """Each run's figures beside the naive baseline's; the idle run's target includes it."""
    for f in figs:
        if f.scenario.startswith("state"):
            continue
        f.naive = base
        if f.scenario == "idle run":
            f.target += f", naive ELIZA req ≥ {size}"
            f.ok = bool(f.ok) and base["eliza"] >= size


def markdown(figs: list[Figure]) -> str:
    head = (
        "| users | db | scenario | wall s | CPU s | peak RSS MB | Graph req | ELIZA req | "
        "ELIZA writes | naive ratio (wall / CPU / RSS / ELIZA req) | target | met |\n"
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|---|\n"
    )
    rows = []
    for f in figs:
        ratio = "—"
        if f.naive:
            parts = [
                f.naive[k] / v if v else float("inf")
                for k, v in (("wall_s", f.wall_s), ("cpu_s", f.cpu_s), ("rss_mb", f.rss_mb))
            ]
            eliza = (
                f"{f.naive['eliza'] / f.eliza:.1f}×" if f.eliza else f"{f.naive['eliza']:.0f} vs 0"
            )
            ratio = " / ".join(f"{p:.1f}×" for p in parts) + f" / {eliza}"
        push = f" (push {f.push_s:.1f})" if f.push_s is not None else ""
        rows.append(
            f"| {f.size} | {f.backend} | {f.scenario} | {f.wall_s:.2f}{push} | {f.cpu_s:.2f} | "
            f"{f.rss_mb:.0f} | {f.graph} | {f.eliza} | {f.writes} | {ratio} | {f.target} | "
            f"{'yes' if f.ok else 'NO'} |"
        )
    return head + "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[5000])
    parser.add_argument("--groups", type=int, default=None)
    parser.add_argument("--no-groups", action="store_true")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (no naive run)")
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--markdown", type=Path, help="write the table (README's) to this file")
    args = parser.parse_args()
    global SPAWNER
    SPAWNER = Spawner()
    try:
        return measure(args)
    finally:
        SPAWNER.close()


def measure(args: argparse.Namespace) -> int:
    figs: list[Figure] = []
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    for size in args.users:
        print(f"{size} users", flush=True)
        backends = ([] if args.no_sqlite else ["sqlite"]) + ([] if args.no_postgres else ["pg"])
        mine: list[Figure] = []
        base: dict[str, float] | None = None
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix="deltasync-scale-") as tmp:
                db = pg_database() if backend == "pg" else None
                with sandbox(size, args, Path(tmp)) as sb:
                    url = db.__enter__() if db is not None else None
                    try:
                        config = write_config(sb, url, args.concurrency)
                        bench = Bench(sb, config, size, backend)
                        figs_ = scenarios(bench, args)
                        if backend == "sqlite" and not args.no_naive:
                            base = naive(bench, args)
                        mine += figs_
                    finally:
                        if db is not None:
                            db.__exit__(None, None, None)
        if base is not None:
            compare(mine, base, size)
        figs += mine
    print(f"\nload average {os.getloadavg()}\n")
    table = markdown(figs)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figs], indent=1), encoding="utf-8")
    return 0 if all(f.ok for f in figs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
