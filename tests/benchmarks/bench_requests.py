"""What a sync costs on the wire and on the clock, measured against the loopback sandbox.

The product promises that a run with nothing to do costs one Graph request per resource and
zero ELIZA writes, and that deltasync is cheaper on the wire than its peers. This script
checks the first promise and prints the figures behind the second, for several tenant sizes:
the real msgraph-sdk, azure-identity and httpx talk to the simulated Graph, token endpoint and
ELIZA on loopback, with a real SQLite state database in a temporary folder (or, with
``--postgres``, a throwaway PostgreSQL database).

It is not part of the test suite (pytest ignores ``tests/benchmarks``). Run it as::

    uv run python tests/benchmarks/bench_requests.py [--users 200 1000 5000] [--postgres]

Scenarios per tenant size: (1) initial full sync, (2) a run with nothing to do, (3) 1 % of
users change their jobTitle, (4) 1 % are disabled, (5) the delta token expires with nothing
changed, (6) a first sync into an ELIZA that already holds every user (soft-match adoption).
Exit code 1 when a promise is broken, 2 when the time budget ran out.

Timings include the simulators, which run in threads of this same process (same GIL): they
are an upper bound of deltasync's own cost, not a prediction for a real tenant.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from deltasync import service
from deltasync.config import Config, StateConfig, load_config
from deltasync.engine import RunOptions, RunReport
from deltasync.sandbox.server import Sandbox, start_sandbox

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EXTERNAL_SUFFIX = "@external.firma.ch"
console = Console(highlight=False, width=200 if not sys.stdout.isatty() else None)


class BudgetExceeded(BaseException):
    """The whole benchmark ran past --budget seconds (raised from SIGALRM)."""


# ---------------------------------------------------------------------------- measurements
class SimClock:
    """CPU seconds the simulators spend answering, summed over their server threads.

    The simulators share this process (and its GIL) with deltasync; subtracting their CPU time
    from the process's shows what deltasync itself costs. Installed by wrapping the handler
    each loopback server calls (a private attribute of the sandbox's servers).
    """

    def __init__(self, sb: Sandbox) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        for server in (sb.graph_server, sb.token_server, sb.eliza_server):
            inner = getattr(server, "_server", None)
            if inner is not None and callable(getattr(inner, "app", None)):
                inner.app = self._timed(inner.app)

    def _timed(self, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def timed(request: Any) -> Any:
            started = time.thread_time()
            try:
                response = handler(request)
                response.read()
                return response
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds += spent

        return timed


@dataclass
class Measure:
    """One sync run as seen from both sides: deltasync's report and the simulators' logs."""

    size: int
    scenario: str
    in_scope: int
    seconds: float
    cpu: float  # process CPU seconds (deltasync + simulators)
    sim_cpu: float  # of which the simulators' server threads
    report: RunReport
    graph_sim: int  # requests the Graph simulator received (delta pages, retries included)
    token_sim: int  # requests to the token endpoint (incl. OIDC discovery)
    eliza_reads: int
    eliza_writes: int
    eliza_by_method: Counter[str]
    patch_fields: list[int] = field(default_factory=list)
    patch_bytes: list[int] = field(default_factory=list)
    note: str = ""
    profile: str | None = None

    @property
    def eliza_total(self) -> int:
        return self.eliza_reads + self.eliza_writes

    def per_user(self, n: int) -> float:
        return self.eliza_total / n if n else 0.0


def in_scope(sb: Sandbox) -> list[dict[str, Any]]:
    """The Entra users the sandbox config syncs (enabled, not from the external domain)."""
    return [
        u
        for u in sb.graph.users()
        if u.get("accountEnabled") and not str(u["userPrincipalName"]).endswith(EXTERNAL_SUFFIX)
    ]


def measure(
    sb: Sandbox,
    clock: SimClock,
    config: Config,
    size: int,
    scenario: str,
    *,
    profile_top: int = 0,
    **opts: Any,
) -> Measure:
    """Run one sync with clean request logs; collect what went over the wire."""
    scope_n = len(in_scope(sb))
    sb.graph.reset_log()
    sb.eliza.reset_log()
    tokens_before = sb.tokens.request_count
    profiler = cProfile.Profile() if profile_top else None
    sim0, cpu0 = clock.seconds, time.process_time()
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        report = service.run_sync(config, RunOptions(**opts), seams=service.Seams())
    finally:
        if profiler is not None:
            profiler.disable()
    seconds = time.perf_counter() - started
    cpu, sim_cpu = time.process_time() - cpu0, clock.seconds - sim0
    log = sb.eliza.requests
    methods = Counter(r.method for r in log)
    patches = [r for r in log if r.method == "PATCH"]
    m = Measure(
        size=size,
        scenario=scenario,
        in_scope=scope_n,
        seconds=seconds,
        cpu=cpu,
        sim_cpu=sim_cpu,
        report=report,
        graph_sim=sb.graph.request_count,
        token_sim=sb.tokens.request_count - tokens_before,
        eliza_reads=methods.get("GET", 0),
        eliza_writes=sum(c for meth, c in methods.items() if meth != "GET"),
        eliza_by_method=methods,
        patch_fields=[len(r.json) if isinstance(r.json, dict) else 0 for r in patches],
        patch_bytes=[len(json.dumps(r.json, separators=(",", ":"))) for r in patches],
    )
    if profiler is not None:
        m.profile = _profile_text(profiler, profile_top)
    if report.exit_code != 0:
        m.note = f"exit {report.exit_code} ({report.status})"
    return m


def _profile_text(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    out.write("\n--- by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ----------------------------------------------------------------------------- scenarios
def pick(sb: Sandbox, share: float, rng: random.Random, exclude: set[str]) -> list[dict[str, Any]]:
    """About ``share`` of the in-scope users that have a jobTitle, at least one."""
    users = [u for u in in_scope(sb) if u.get("jobTitle") and u["id"] not in exclude]
    users.sort(key=lambda u: str(u["id"]))
    n = max(1, round(len(in_scope(sb)) * share))
    return rng.sample(users, min(n, len(users)))


def seed_existing(sb: Sandbox, config: Config) -> int:
    """Fill ELIZA with a user and a person for every in-scope Entra user, without remote_key.

    Values are what the configured mapping produces (the state of a hand-kept ELIZA that
    already agrees with Entra), so adoption needs only the soft match and the remote_key.
    """
    tz = config.timezone
    n = 0
    for entra in in_scope(sb):
        user_fields = {
            name: _plain(expr.evaluate(entra, tz))
            for name, expr in config.field_mapping.user.items()
        }
        user = sb.eliza.add_user(**user_fields, is_active=True)
        person_fields = {
            name: _plain(expr.evaluate(entra, tz))
            for name, expr in config.field_mapping.person.items()
        }
        sb.eliza.add_person(**person_fields, user=int(user["id"]), anstellungsart="intern")
        n += 1
    return n


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


@contextmanager
def sandbox(users: int, seed: int, page_size: int) -> Iterator[tuple[Sandbox, Config, SimClock]]:
    with tempfile.TemporaryDirectory(prefix="deltasync-bench-") as tmp:
        sb = start_sandbox(Path(tmp), users=users, seed=seed, page_size=page_size)
        try:
            yield sb, load_config(sb.config_path, env=sb.env), SimClock(sb)
        finally:
            sb.stop()


@contextmanager
def pg_database(url: str) -> Iterator[str]:
    """A throwaway PostgreSQL database on the server at ``url``; dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"deltasync_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def bench_size(size: int, args: argparse.Namespace, out: list[Measure]) -> None:
    """The chosen scenarios for one tenant size; measures are appended to ``out``."""
    rng = random.Random(args.seed)
    only: set[int] = set(args.only)
    profile_top = args.profile if size == max(args.users) else 0
    if only & {1, 2, 3, 4, 5}:
        with sandbox(size, args.seed, args.page_size) as (sb, config, clock):
            console.print(f"[bold]{size} users[/]: {len(in_scope(sb))} in scope")
            # every later scenario needs the initial sync, measured or not
            m = measure(sb, clock, config, size, "1 initial sync", profile_top=profile_top)
            if 1 in only:
                step(out, m)
            if 2 in only:
                step(out, measure(sb, clock, config, size, "2 nothing to do"))
            changed: list[dict[str, Any]] = []
            if 3 in only:
                changed = pick(sb, args.share, rng, set())
                for u in changed:
                    sb.graph.update_user(u["id"], jobTitle=f"{u['jobTitle']} (neu)")
                m = measure(sb, clock, config, size, f"3 jobTitle x{len(changed)}")
                m.note = m.note or f"{len(changed)} changed"
                step(out, m)
            if 4 in only:
                leavers = pick(sb, args.share, rng, {u["id"] for u in changed})
                for u in leavers:
                    sb.graph.disable_user(u["id"])
                # --allow-deletes: from 2500 users on, 1 % is more than the default
                # max_deactivations (25), and the threshold would hold them
                m = measure(
                    sb, clock, config, size, f"4 disabled x{len(leavers)}", allow_deletes=True
                )
                m.note = m.note or f"{len(leavers)} deactivated"
                step(out, m)
            if 5 in only:
                sb.graph.expire_tokens()
                m = measure(sb, clock, config, size, "5 token expired")
                m.note = m.note or (m.report.full_round_reason or "")
                step(out, m)

    if 6 in only:
        with sandbox(size, args.seed, args.page_size) as (sb, config, clock):
            seeded = seed_existing(sb, config)
            m = measure(sb, clock, config, size, "6 adopt existing")
            ops = Counter(f"{a['kind']}.{a['op']}" for a in m.report.actions if a["result"] == "ok")
            m.note = m.note or ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
            m.note += f" ({seeded} seeded)"
            step(out, m)

    if args.postgres:
        pg = pg_database(args.pg_url)
        with pg as url, sandbox(size, args.seed, args.page_size) as (sb, c, clock):
            config = dataclasses.replace(c, state=StateConfig(url=url))
            step(out, measure(sb, clock, config, size, "1 initial sync (pg)"))
            step(out, measure(sb, clock, config, size, "2 nothing to do (pg)"))


def step(out: list[Measure], m: Measure) -> None:
    out.append(m)
    r = m.report
    console.print(
        f"  {m.scenario:<22} {m.seconds:7.2f}s (cpu {m.cpu:.1f}, sims {m.sim_cpu:.1f})  "
        f"graph {r.graph_requests:>3}  "
        f"eliza {m.eliza_reads} reads / {m.eliza_writes} writes  {m.note}"
    )


# -------------------------------------------------------------------------------- output
def _sizes(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{min(values)}-{max(values)}" if min(values) != max(values) else str(values[0])


def table(measures: list[Measure]) -> Table:
    t = Table(title="deltasync on the wire (loopback sandbox)", show_lines=False)
    for name, justify in [
        ("users", "right"),
        ("scenario", "left"),
        ("time s", "right"),
        ("cpu s", "right"),
        ("sim cpu", "right"),
        ("graph req", "right"),
        ("pages", "right"),
        ("token req", "right"),
        ("eliza GET", "right"),
        ("POST", "right"),
        ("PATCH", "right"),
        ("DELETE", "right"),
        ("eliza/user", "right"),
        ("fields/PATCH", "right"),
        ("bytes/PATCH", "right"),
        ("note", "left"),
    ]:
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    last = None
    for m in measures:
        if last is not None and m.size != last:
            t.add_section()
        last = m.size
        r = m.report
        t.add_row(
            str(m.size),
            m.scenario,
            f"{m.seconds:.2f}",
            f"{m.cpu:.2f}",
            f"{m.sim_cpu:.2f}",
            str(r.graph_requests),
            str(r.pages),
            str(m.token_sim),
            str(m.eliza_reads),
            str(m.eliza_by_method.get("POST", 0)),
            str(m.eliza_by_method.get("PATCH", 0)),
            str(m.eliza_by_method.get("DELETE", 0)),
            f"{m.per_user(m.in_scope):.2f}",
            _sizes(m.patch_fields),
            _sizes(m.patch_bytes),
            m.note,
        )
    return t


def verdicts(measures: list[Measure]) -> list[tuple[bool, bool, str]]:
    """(ok, binding, text): a binding verdict that is not ok fails the benchmark."""
    result: list[tuple[bool, bool, str]] = []
    for m in measures:
        r = m.report
        tag = f"{m.size} users, {m.scenario}"
        consistent = r.graph_requests == m.graph_sim and r.eliza_requests == m.eliza_total
        if not consistent:
            result.append(
                (
                    False,
                    False,
                    f"{tag}: the report counts graph {r.graph_requests} / eliza "
                    f"{r.eliza_requests}, the simulators saw {m.graph_sim} / {m.eliza_total}",
                )
            )
        if m.scenario.startswith("1 "):
            creates = m.eliza_by_method.get("POST", 0)
            ok = r.exit_code == 0 and m.eliza_reads <= 10
            result.append(
                (
                    ok,
                    False,
                    f"{tag}: {r.pages} pages, {m.eliza_reads} ELIZA reads for {creates} creates "
                    f"({m.per_user(m.in_scope):.2f} ELIZA requests per user)",
                )
            )
        elif m.scenario.startswith("2 "):
            ok = r.graph_requests <= 1 and m.eliza_writes == 0 and r.eliza_writes == 0
            result.append(
                (
                    ok,
                    True,
                    f"{tag}: {r.graph_requests} Graph request, {m.eliza_total} ELIZA requests, "
                    f"{m.eliza_writes} writes",
                )
            )
        elif m.scenario.startswith("3 "):
            n = int(m.scenario.split("x")[-1])
            ok = m.eliza_by_method.get("PATCH", 0) == n and set(m.patch_fields) == {1}
            ok = ok and m.eliza_total == n
            result.append(
                (
                    ok,
                    False,
                    f"{tag}: {m.eliza_by_method.get('PATCH', 0)} PATCH for {n} changes, "
                    f"{_sizes(m.patch_fields)} field(s) each, {m.eliza_total} ELIZA requests",
                )
            )
        elif m.scenario.startswith("4 "):
            n = int(m.scenario.split("x")[-1])
            per = m.eliza_total / n if n else 0
            ok = r.exit_code == 0 and per <= 3
            result.append(
                (
                    ok,
                    False,
                    f"{tag}: {m.eliza_total} ELIZA requests for {n} deactivations "
                    f"({per:.1f} each: {dict(m.eliza_by_method)})",
                )
            )
        elif m.scenario.startswith("5 "):
            ok = m.eliza_writes == 0 and r.round_kind == "full"
            result.append(
                (
                    ok,
                    True,
                    f"{tag}: full re-read of {r.pages} pages ({r.graph_requests} Graph requests "
                    f"incl. the refused token), {m.eliza_writes} ELIZA writes",
                )
            )
        elif m.scenario.startswith("6 "):
            ok = r.exit_code == 0 and m.eliza_by_method.get("POST", 0) == 0
            result.append(
                (
                    ok,
                    False,
                    f"{tag}: {m.per_user(m.in_scope):.2f} ELIZA requests per user, "
                    f"{m.eliza_by_method.get('POST', 0)} creates, "
                    f"{m.eliza_by_method.get('PATCH', 0)} PATCH",
                )
            )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--page-size", type=int, default=100, help="Graph delta page size")
    parser.add_argument("--share", type=float, default=0.01, help="changed/disabled share")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        default=[1, 2, 3, 4, 5, 6],
        choices=range(1, 7),
        metavar="N",
        help="scenarios to run (1-6; the initial sync always runs first)",
    )
    parser.add_argument("--postgres", action="store_true", help="also (1)-(2) on PostgreSQL")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument(
        "--budget", type=float, default=1500, help="seconds for everything (then exit 2)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile the initial sync of the largest size; print the top N functions",
    )
    args = parser.parse_args(argv)

    def on_alarm(_sig: int, _frame: FrameType | None) -> None:
        raise BudgetExceeded

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.budget)
    measures: list[Measure] = []
    timed_out = False
    started = time.perf_counter()
    try:
        for size in args.users:
            bench_size(size, args, measures)
    except BudgetExceeded:
        timed_out = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    total = time.perf_counter() - started

    console.print()
    console.print(table(measures))
    for m in measures:
        if m.profile:
            console.print(f"\n[bold]profile: {m.size} users, {m.scenario}[/]")
            console.print(m.profile, markup=False)
    broken = False
    console.print()
    for ok, binding, text in verdicts(measures):
        word = "OK" if ok else ("BROKEN" if binding else "NOTE")
        style = "green" if ok else ("bold red" if binding else "yellow")
        console.print(f"[{style}]{word:>6}[/] {text}")
        broken = broken or (binding and not ok)
    console.print(f"\n{len(measures)} runs in {total:.1f}s")
    if timed_out:
        console.print(f"[bold red]time budget of {args.budget:.0f}s exceeded[/]; partial results")
        return 2
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
