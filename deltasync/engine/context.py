"""What the phases of one run share: the ports, the settings, the ledger and what is known."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from deltasync.engine.directory import Directory
from deltasync.engine.ledger import Records
from deltasync.engine.ports import Collections, Source, Store, Target
from deltasync.engine.progress import NO_PROGRESS, Progress
from deltasync.engine.report import RunReport
from deltasync.engine.settings import EngineSettings, RunOptions
from deltasync.errors import LeaseHeldError
from deltasync.models import Kind, Link, MirrorObject
from deltasync.plan.context import PlanContext

LEASE_RENEW_S = 30.0


class Lease:
    """Renews the run's lease while it works; a lost lease stops the run."""

    def __init__(self, store: Store, holder: str) -> None:
        self.store = store
        self.holder = holder
        self._last = time.monotonic()

    def renew(self) -> None:
        """Renew when due; raises LeaseHeldError when another run took over."""
        if time.monotonic() - self._last < LEASE_RENEW_S:
            return
        if not self.store.renew_lease(self.holder):
            raise LeaseHeldError(
                "this run lost its lease (it stalled for over two minutes and another run "
                "took over); it stops here, the other run carries on"
            )
        self._last = time.monotonic()


@dataclass
class Run:
    """One run in progress; the phases read and extend what it knows."""

    store: Store
    source: Source
    target: Target
    names: Collections
    settings: EngineSettings
    opts: RunOptions
    report: RunReport
    ledger: Records
    lease: Lease
    directory: Directory
    log: Callable[[str], None]
    now: Callable[[], datetime]
    links: dict[str, dict[Kind, Link]] = field(default_factory=dict)
    ids: dict[tuple[str, Kind], int] = field(default_factory=dict)  # -> ELIZA id, linked so far
    objects: dict[str, MirrorObject] = field(default_factory=dict)
    protected: dict[str, str] = field(default_factory=dict)  # Entra id -> why hands off
    fingerprint_current: bool = False  # the stored plan fingerprint matches the settings
    # --verify-target: fields of a linked object changed in ELIZA by hand
    drift: dict[tuple[str, Kind], set[str]] = field(default_factory=dict)
    progress: Progress = NO_PROGRESS

    def link(self, entra_id: str, kind: Kind) -> Link | None:
        """The object's link of that kind, as this run knows it."""
        return self.links.get(entra_id, {}).get(kind)

    def linked(self, entra_id: str, kind: Kind, link: Link | None) -> None:
        """Remember a new, changed or (None) dropped link."""
        known = self.links.setdefault(entra_id, {})
        if link is None:
            known.pop(kind, None)
        else:
            known[kind] = link
            self.ids[(entra_id, kind)] = link.eliza_id

    def plan_context(self) -> PlanContext:
        """The planner's settings with the persons linked so far (for managers)."""
        person_ids = {eid: i for (eid, kind), i in self.ids.items() if kind == Kind.PERSON}
        return replace(self.settings.ctx, person_ids=person_ids)
