"""What a groups round costs: requests and wall time with 2,000 groups and 20,000 users.

The real msgraph-sdk, azure-identity and httpx against the loopback sandbox, a real SQLite
state database. Not part of the test suite (pytest ignores ``tests/benchmarks``)::

    uv run python tests/benchmarks/bench_groups.py [--users 20000] [--groups 2000]

Steps: (0) the users are synced with group sync off (not a groups figure, shown for scale);
(1) group sync is switched on: the first groups round reads every group, creates the custom
groups and sets every user's groups; (2) an idle run; (3) ten membership changes (five adds,
five removals) and one rename; (4) a group nested into another with ``nested: flatten``.
Each line: Graph and ELIZA requests, ELIZA writes, wall time, CPU seconds of the process and
its peak RSS so far (the simulators run in threads of this process: an upper bound).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from deltasync import service
from deltasync.config import Config, load_config
from deltasync.engine import RunOptions, RunReport
from deltasync.sandbox.server import Sandbox, start_sandbox


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _groups(sandbox: Sandbox, n_groups: int, seed: int) -> list[str]:
    """Groups of several sizes over the enabled users: one of everyone, 1 % of 1,000, the rest
    of 5 to 40 members, and every tenth group nested into the one before."""
    rng = random.Random(seed)
    users = [u["id"] for u in sandbox.graph.users() if u.get("accountEnabled")]
    made = [sandbox.graph.add_group(displayName="Bench Alle", members=users)]
    big = max(1, n_groups // 100)
    for i in range(big):
        made.append(
            sandbox.graph.add_group(displayName=f"Bench gross {i}", members=rng.sample(users, 1000))
        )
    for i in range(n_groups - big - 1):
        size = rng.randint(5, 40)
        made.append(
            sandbox.graph.add_group(
                displayName=f"Bench Team {i:04d}", members=rng.sample(users, size)
            )
        )
    for i in range(10, len(made), 10):
        sandbox.graph.add_member(made[i - 1], made[i])
    return made


def _run(title: str, config: Config, sandbox: Sandbox, **flags: bool) -> RunReport:
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    cpu, wall = _cpu(), time.monotonic()
    report = service.run_sync(config, RunOptions(**flags))
    wall, cpu = time.monotonic() - wall, _cpu() - cpu
    print(
        f"{title:<44} Graph {sandbox.graph.request_count:>5}  "
        f"ELIZA {sandbox.eliza.request_count:>6}"
        f" ({sandbox.eliza.write_count:>6} writes)  {wall:7.1f} s wall  {cpu:7.1f} s CPU"
        f"  peak RSS {_rss_mb():6.0f} MB  exit {report.exit_code}",
        flush=True,
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deltasync-bench-groups-") as tmp:
        started = time.monotonic()
        sandbox = start_sandbox(Path(tmp), users=args.users, seed=args.seed, page_size=200)
        try:
            made = _groups(sandbox, args.groups, args.seed)
            memberships = sum(len(sandbox.graph.group(g)["members"]) for g in made)
            print(
                f"sandbox: {args.users} users, {len(sandbox.graph.groups())} groups "
                f"({memberships} memberships in the bench groups), built in "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
            base = load_config(sandbox.config_path, env=sandbox.env)
            on = dataclasses.replace(
                base, sync_options=dataclasses.replace(base.sync_options, sync_groups=True)
            )
            _run("0. users only (group sync off)", base, sandbox)
            first = _run("1. first groups round", on, sandbox)
            _run("2. idle run", on, sandbox)
            rng = random.Random(args.seed)
            users = [u["id"] for u in sandbox.graph.users() if u.get("accountEnabled")]
            for gid in rng.sample(made[1:], 5):
                members = sandbox.graph.group(gid)["members"]
                sandbox.graph.add_member(gid, next(u for u in users if u not in members))
                sandbox.graph.remove_member(gid, members[0])
            sandbox.graph.update_group(made[-1], displayName="Bench umbenannt")
            _run("3. 10 membership changes + 1 rename", on, sandbox)
            flat = dataclasses.replace(on, groups=dataclasses.replace(on.groups, nested="flatten"))
            _run("4a. nested: flatten (every user replanned)", flat, sandbox)
            sandbox.graph.add_member(made[1], made[-2])
            _run("4b. one group nested into a big one", flat, sandbox)
        finally:
            sandbox.stop()
    return 0 if first.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
