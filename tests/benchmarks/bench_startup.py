"""What a command costs before it does anything: each one timed as a whole process.

The targets of issue 6: ``deltasync --version`` under 0.3 s, ``deltasync state`` and
``deltasync state user X`` under 0.6 s on a state database of 5,000 users. The database is
built once by a real sync against the loopback sandbox (mirror, links, journal, one run);
then every command runs ``--repeat`` times (median reported) as the administrator runs it,
through the ``deltasync`` console script, with its CPU seconds and peak RSS taken from the
child's own resource usage.

Python's bytecode cache is on for the children (``PYTHONDONTWRITEBYTECODE`` is dropped, the
cache goes to a folder of its own) and each command runs once unmeasured first, as on an
installed deltasync; ``--cold`` keeps the environment as it is instead.

It is not part of the test suite (pytest ignores ``tests/benchmarks``). Run it as::

    uv run python tests/benchmarks/bench_startup.py [--users 5000] [--repeat 5] [--dir DIR]

``--dir`` keeps the built database between runs of the script. Exit code 1 when a target is
missed (a loaded machine misses them; the figures say by how much).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "bench-user.txt"  # the UPN ``state user`` looks up, kept beside the config


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    exit_code: int


def state_for(workdir: Path, users: int) -> tuple[Path, str]:
    """The config and a UPN of a state database of ``users`` users, built when missing.

    The build runs in a process of its own: a child's peak RSS on Linux counts the memory of
    the parent it was forked from, so this process stays small.
    """
    config_path = workdir / "entra_sync.yaml"
    if not ((workdir / MARKER).exists() and config_path.exists()):
        build = [sys.executable, __file__, "--build", str(workdir), "--users", str(users)]
        subprocess.run(build, check=True)
    return config_path, (workdir / MARKER).read_text(encoding="utf-8").strip()


def build_state(workdir: Path, users: int) -> None:
    """A sandbox config whose state database holds ``users`` synced Entra users."""
    from deltasync import service
    from deltasync.config import load_config
    from deltasync.sandbox.server import start_sandbox

    if workdir.exists():
        shutil.rmtree(workdir)
    started = time.perf_counter()
    sandbox = start_sandbox(workdir, users=users)
    try:
        config = load_config(sandbox.config_path, env=sandbox.env)
        report = service.run_sync(config, service.RunOptions())
        upns = sorted(str(u["userPrincipalName"]) for u in sandbox.graph.users())
    finally:
        sandbox.stop()
    if report.exit_code != 0:
        raise SystemExit(f"the initial sync failed (exit {report.exit_code}): {report.error}")
    upn = upns[len(upns) // 2]
    (workdir / MARKER).write_text(upn + "\n", encoding="utf-8")
    print(f"built a state database of {users} users in {time.perf_counter() - started:.1f}s")


def run_once(argv: list[str], env: dict[str, str]) -> Sample:
    """One whole process; its own rusage (``wait4``), so peak RSS is this child's alone."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {errors.decode()}")
    return Sample(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        exit_code=proc.returncode,
    )


def child_env(workdir: Path, cold: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DELTASYNC_CONFIG", None)
    if not cold:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def deltasync_command() -> list[str]:
    script = Path(sys.executable).with_name("deltasync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "deltasync"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="keep the state database in this folder")
    parser.add_argument("--cold", action="store_true", help="no bytecode cache, no warm-up run")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build is not None:
        build_state(args.build, args.users)
        return 0

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="deltasync-bench-startup-"))
    config, upn = state_for(workdir.resolve(), args.users)
    env = child_env(workdir.resolve(), args.cold)
    base = deltasync_command()
    cases = [
        ("deltasync --version", [*base, "--version"], 0.3),
        ("deltasync state", [*base, "state", "-c", str(config)], 0.6),
        ("deltasync state user X", [*base, "state", "user", upn, "-c", str(config)], 0.6),
    ]
    mode = "cold (no bytecode cache)" if args.cold else "warm bytecode cache"
    print(f"{args.users} users, median of {args.repeat}, {mode}, load {os.getloadavg()[0]:.2f}")
    print(f"{'command':<26}{'median':>9}{'target':>9}{'':>6}{'cpu':>8}{'peak RSS':>11}")
    missed = 0
    for label, argv, target in cases:
        if not args.cold:
            run_once(argv, env)
        samples = [run_once(argv, env) for _ in range(args.repeat)]
        median = statistics.median(s.wall_s for s in samples)
        cpu = statistics.median(s.cpu_s for s in samples)
        rss = max(s.peak_rss_mb for s in samples)
        ok = median < target
        missed += not ok
        print(
            f"{label:<26}{median:>8.3f}s{'< ' + str(target) + 's':>9}{'ok' if ok else 'MISS':>6}"
            f"{cpu:>7.3f}s{rss:>8.1f} MB"
        )
    if args.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
