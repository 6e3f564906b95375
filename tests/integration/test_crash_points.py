"""SIGKILL the real CLI at many counted points; a rerun converges to what a clean run gives.

Each point runs ``python -m deltasync sync -c CFG`` as a child process against the loopback
sandbox (group sync on: the tenant's department, nested and project groups) and kills it at
the Nth Graph request, ELIZA request, ELIZA write (applied, response not sent) or state commit
(before or after it), then reruns ``sync`` in-process until it is done and compares ELIZA with
a reference sandbox of the same tenant that ran without kills: the same users, persons,
memberships and custom groups (linked by remote_key to their Entra group), each user's
groups by name, field by field, no duplicate, and an idle run afterwards. The points are
counted, not timed (see ``tests/crash_helpers.py``), and chosen from a clean run's counts with
a fixed seed: the same points on every CI run. The rerun is a plain ``sync``: the killed run's
lease is taken over at once (its process on this host is gone).

- the first sync (a full round, every object created) is killed at ``FIRST`` points, each on
  a fresh sandbox; ``GROUP_FIRST`` of them inside the group round (a later groups page's
  request, a page transaction holding ``members@delta``, a custom group's POST before its
  link commit);
- then an incremental history of ``STEPS`` steps (renames, disables, new users, deletes,
  restores, manager changes, members joining and leaving groups, renamed and new groups;
  every fourth step a full round after Graph expired the tokens) is killed once per step, on
  one sandbox that carries on after each recovery; every other step inside its group round
  when it has one (a user's ``groups`` PATCH, a group POST, a groups page).

``DELTASYNC_CRASH_SEED``, ``DELTASYNC_CRASH_FIRST`` and ``DELTASYNC_CRASH_STEPS`` change the
seed and the numbers (defaults 8, 30, 24: 54 kill points).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

from crash_helpers import (
    KINDS,
    Child,
    CommitCounter,
    Counts,
    KillSwitch,
    Point,
    Recovery,
    TenantChanges,
    differences,
    eliza_view,
    measure,
    spread,
)
from e2e_helpers import SandboxFactory, eliza_person_of, sync

from deltasync.config import load_config
from deltasync.errors import LeaseHeldError
from deltasync.sandbox.server import Sandbox

SEED = int(os.environ.get("DELTASYNC_CRASH_SEED", "8"))
FIRST = int(os.environ.get("DELTASYNC_CRASH_FIRST", "30"))
STEPS = int(os.environ.get("DELTASYNC_CRASH_STEPS", "24"))
TENANT = {"users": 16, "seed": 5, "page_size": 5, "sync_groups": True}
GROUP_FIRST = 6  # of the first sync's points, inside its group round (2 per place)
# how the first sync's points are shared among the kinds (the rest go to ELIZA writes)
FIRST_SHARE = {"graph": 0.15, "eliza": 0.15, "before-commit": 0.2, "after-commit": 0.2}


def start(make_sandbox: SandboxFactory, workdir: Path) -> Sandbox:
    """A sandbox of the test's tenant; no deletion threshold (a small tenant trips it)."""
    box = make_sandbox(workdir=workdir, **TENANT)
    with box.config_path.open("a", encoding="utf-8") as config:
        config.write("deprovisioning: {max_deactivations: 1000, max_deactivation_percent: 100}\n")
    return box


def first_sync_points(counts: Counts, n: int, rng: random.Random) -> list[Point]:
    points = by_place(counts.group_points(), GROUP_FIRST, rng)
    spread_n = n - len(points)
    for kind, share in FIRST_SHARE.items():
        points += [Point(kind, i) for i in spread(counts.of(kind), round(spread_n * share), rng)]
    rest = n - len(points)
    points += [Point("eliza-write", i) for i in spread(counts.writes, rest, rng)]
    return points


def by_place(points: list[Point], k: int, rng: random.Random) -> list[Point]:
    """``k`` of ``points``, shared evenly among their places (``Point.where``)."""
    places: dict[str, list[Point]] = {}
    for point in points:
        places.setdefault(point.where, []).append(point)
    chosen: list[Point] = []
    per_place = -(-k // max(1, len(places)))
    for place in places.values():
        chosen += rng.sample(place, min(per_place, len(place)))
    return chosen[:k]


def step_point(counts: Counts, step: int, rng: random.Random) -> Point:
    """One point of this step's run: on even steps one inside the group round if it has one
    (its places taken in turn), else the kinds taken in turn (skipping those it has none)."""
    in_groups = counts.group_points()
    if step % 2 == 0 and in_groups:
        places = sorted({p.where for p in in_groups})
        place = places[(step // 2) % len(places)]
        return rng.choice([p for p in in_groups if p.where == place])
    for shift in range(len(KINDS)):
        kind = KINDS[(step // 2 + shift) % len(KINDS)]
        if counts.of(kind):
            return Point(kind, rng.randrange(1, counts.of(kind) + 1))
    raise AssertionError(f"step {step} made no request and no commit")


class Verdicts:
    def __init__(self) -> None:
        self.killed: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.in_groups: Counter[str] = Counter()  # killed points inside a group round
        self.unreached: list[str] = []
        self.bad: list[str] = []

    def judge(
        self,
        where: str,
        point: Point,
        rc: int,
        box: Sandbox,
        reference: Sandbox,
        recovery: Recovery,
    ) -> None:
        if rc == -9:
            self.killed[point.kind] += 1
            if point.where:
                self.in_groups[point.where] += 1
        elif rc == 0:
            self.unreached.append(f"{where} {point}")
        else:
            self.bad.append(f"{where} {point}: the child exited {rc} (not killed)")
        config = load_config(box.config_path, env=box.env)
        try:
            report = recovery.rerun(box, config)
        except LeaseHeldError as exc:
            self.bad.append(f"{where} {point}: the rerun found the dead run's lease: {exc}")
            return
        if report.exit_code != 0:
            self.bad.append(f"{where} {point}: the rerun exited {report.exit_code}")
        idle = sync(config)
        if idle.counts():
            self.bad.append(f"{where} {point}: the run after the rerun still did {idle.counts()}")
        got, dups = eliza_view(box.eliza)
        want, _ = eliza_view(reference.eliza)
        self.bad += [f"{where} {point}: duplicate {d}" for d in dups]
        self.bad += [f"{where} {point}: {d}" for d in differences(got, want)]


def test_sigkill_at_counted_points_then_a_rerun_converges_to_the_clean_result(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    rng = random.Random(f"points:{SEED}")
    commits = CommitCounter()
    child = Child(pycache=tmp_path / "pycache", logs=tmp_path / "logs")
    recovery = Recovery()
    verdicts = Verdicts()
    try:
        reference = start(make_sandbox, tmp_path / "reference")
        ref_config = load_config(reference.config_path, env=reference.env)
        counts = measure(reference, commits, lambda: sync(ref_config))

        # 1. the first sync, each point on a fresh sandbox of the same tenant
        for i, point in enumerate(first_sync_points(counts, FIRST, rng)):
            box = start(make_sandbox, tmp_path / f"first-{i:02d}")
            rc = child.run(box, KillSwitch(box), point)
            verdicts.judge("first sync", point, rc, box, reference, recovery)
            box.stop()

        # 2. an incremental history, one point per step, on one sandbox that carries on
        box = start(make_sandbox, tmp_path / "history")
        switch = KillSwitch(box)
        assert sync(load_config(box.config_path, env=box.env)).exit_code == 0
        changes = TenantChanges(SEED, groups=True)
        for step in range(1, STEPS + 1):
            done = changes.step(reference, [box])
            if step % 4 == 0:
                for b in (reference, box):
                    b.graph.expire_tokens()
                done.append("full round")
            counts = measure(reference, commits, lambda: sync(ref_config))
            point = step_point(counts, step, rng)
            rc = child.run(box, switch, point)
            verdicts.judge(f"step {step} ({', '.join(done)})", point, rc, box, reference, recovery)
    finally:
        commits.close()

    killed = sum(verdicts.killed.values())
    in_groups = sum(verdicts.in_groups.values())
    print(
        f"\nkill points: {killed} killed {verdicts.killed}, {in_groups} of them in a group "
        f"round {dict(verdicts.in_groups)}, {len(verdicts.unreached)} not reached "
        f"{verdicts.unreached}; reruns that took over the dead run's lease: "
        f"{recovery.takeovers}"
    )
    assert not verdicts.bad, "\n".join(verdicts.bad)
    assert killed >= min(50, FIRST + STEPS - 2), verdicts.unreached
    assert len(verdicts.in_groups) == 4, verdicts.in_groups  # every place of a group round
    assert in_groups >= min(12, GROUP_FIRST + STEPS // 4), verdicts.in_groups


def test_a_deprovisioning_killed_between_its_write_and_its_link_is_still_reversed_exactly(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # found by the test above: the rerun read its own lost write back from ELIZA and
    # remembered 'ehemalig' and the exit date as what the person had before
    box = start(make_sandbox, tmp_path / "box")
    config = load_config(box.config_path, env=box.env)
    sync(config)
    entra = next(u for u in box.graph.users() if u.get("companyName") and u["accountEnabled"])
    (before,) = eliza_person_of(box, entra["id"])
    box.graph.soft_delete(entra["id"])
    child = Child(pycache=tmp_path / "pycache", logs=tmp_path / "logs")
    # the user's PATCH is write 1, the person's write 2: applied, the child dies unanswered
    assert child.run(box, KillSwitch(box), Point("eliza-write", 2)) == -9
    (gone,) = eliza_person_of(box, entra["id"])
    assert gone["anstellungsart"] == "ehemalig"
    assert Recovery().rerun(box, config).exit_code == 0
    box.graph.restore(entra["id"])
    assert sync(config).exit_code == 0
    (after,) = eliza_person_of(box, entra["id"])
    assert after["anstellungsart"] == before["anstellungsart"]
    assert after["austrittsdatum"] == before["austrittsdatum"]
