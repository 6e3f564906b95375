"""Watch mode, measured: offboarding latency and the cost of idling, against the loopback sandbox.

``deltasync watch --interval 5`` runs the delta loop every 5 s. This script starts the
sandbox (real msgraph-sdk, azure-identity and httpx on loopback, SQLite state), runs a first
sync, starts the watch loop in a thread, lets it idle, then disables accounts in the
simulated tenant one at a time at random moments of the interval and measures the time from
each disable to the ELIZA user's ``is_active: false``. Then it prints the Graph, ELIZA and
token requests of the idle cycles, per cycle and per hour.

Not part of the test suite. Run it as::

    uv run python tests/benchmarks/bench_watch.py [--interval 5] [--idle 60] [--disables 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from deltasync import service
from deltasync.config import load_config
from deltasync.engine import RunOptions
from deltasync.sandbox.server import start_sandbox


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idling measured")
    parser.add_argument("--disables", type=int, default=5)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sb = start_sandbox(Path(tmp), users=args.users, seed=7, page_size=100)
        try:
            config = load_config(sb.config_path, env=sb.env)
            service.run_sync(config, RunOptions())
            tokens0 = _token_requests(sb)
            sb.graph.reset_log()
            sb.eliza.reset_log()
            stop = service.Stop()
            box: dict[str, Any] = {}
            thread = threading.Thread(
                target=lambda: box.update(
                    result=service.run_watch(config, interval_s=args.interval, stop=stop)
                ),
                daemon=True,
            )
            started = time.monotonic()
            thread.start()
            time.sleep(args.idle)
            idle_s = time.monotonic() - started
            idle_graph, idle_eliza = sb.graph.request_count, sb.eliza.request_count
            idle_tokens = _token_requests(sb) - tokens0
            rng = random.Random(1)
            active = [
                u
                for u in sb.graph.users()
                if u.get("accountEnabled")
                and not str(u["userPrincipalName"]).endswith("external.firma.ch")
            ]
            latencies = []
            for entra in rng.sample(active, args.disables):
                time.sleep(rng.uniform(0, args.interval))
                sb.graph.disable_user(entra["id"])
                t0 = time.monotonic()
                while time.monotonic() - t0 < 4 * args.interval:
                    users = [
                        u for u in sb.eliza.users.values() if u.get("remote_key") == entra["id"]
                    ]
                    if users and users[0]["is_active"] is False:
                        break
                    time.sleep(0.02)
                latencies.append(time.monotonic() - t0)
            stop.set("benchmark done")
            thread.join(30)
        finally:
            sb.stop()
    result = box["result"]
    cycles_idle = idle_s / args.interval
    per_hour = 3600 / idle_s
    print(f"interval {args.interval:g} s, {args.users} users, idle for {idle_s:.1f} s")
    print(
        f"idle: {idle_graph} Graph requests ({idle_graph / cycles_idle:.2f} per cycle, "
        f"{idle_graph * per_hour:.0f} per hour), {idle_eliza} ELIZA requests "
        f"({idle_eliza * per_hour:.0f} per hour), {idle_tokens} token requests"
    )
    print(
        "disable -> ELIZA is_active false: "
        + ", ".join(f"{x:.2f}" for x in latencies)
        + f" s (median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s, "
        f"two intervals = {2 * args.interval:g} s)"
    )
    print(f"watch: {result.cycles} cycles, {result.failed_cycles} failed")
    return 0 if max(latencies) <= 2 * args.interval + 1 and idle_eliza == 0 else 1


def _token_requests(sb: Any) -> int:
    return int(sb.tokens.request_count)


if __name__ == "__main__":
    raise SystemExit(main())
