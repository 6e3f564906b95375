"""The only place a run writes what it did: journal, links, failures, settling, fingerprint.

A real run gets a :class:`Ledger`; a dry run a :class:`DryLedger` with the same methods
(:class:`Records`) that records nothing, so no phase asks whether the run is a dry one.
The mirror and the delta cursors are a copy of Graph, not a record of the run: the pull
phase keeps them in a dry run too. The order in which the push calls the ledger is
written down in :mod:`deltasync.engine.push`.

The ledger writes behind: links, journal entries, failures and settling wait in memory and
reach the store in that same order, in one transaction per batch (:meth:`Ledger.flush`:
when a "creating" marker must be durable before its POST, every ``FLUSH_EVERY`` records,
and at the end of the push). A crash loses at most the unflushed records: their creates are
found again by remote_key and the marker, their PATCHes are sent again and change nothing.

The markers are committed in groups: a create awaits :meth:`Ledger.creating`, which
commits in a worker thread (when the store allows it, ``Store.threadsafe``) while the other
creates carry on. Batches are written strictly in the order they were taken. Markers are also
taken ahead: the push announces the creates of a batch (:meth:`Ledger.expect_creates`), and a
marker that must be committed takes the markers of the next creates with it (up to
``AHEAD_MAX``, the window doubling while creates keep coming and closing when an object
marked ahead is matched instead), so a first sync commits once per up to 256 creates, not
once per create (~3 ms of a worker's turn on PostgreSQL, and the lock on the interpreter). A
marker is still committed before its own POST; the markers taken ahead whose create was not
sent are deleted at the end of the batch (:meth:`Ledger.batch_done`), and until then they do
not count as this run's pending creates. After a crash they do: the next run looks those
objects up by remote_key before creating, as after any lost POST.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from deltasync.engine.ports import Store
from deltasync.engine.report import changes_json
from deltasync.fields import GROUPS
from deltasync.models import Kind, Link, LinkStatus
from deltasync.plan.actions import Action, Op

CREATING = "creating"  # journal marker written before a POST: its outcome may get lost
PLAN_FINGERPRINT = "plan_fingerprint"
FLUSH_EVERY = 500  # records per transaction at most
AHEAD_MAX = 256  # creates whose markers one commit takes ahead at most
GONE = "gone"  # journal entry: the linked ELIZA object was deleted in ELIZA, the link dropped
FIELDS_CHECKED = "target_fields_checked"  # the plan fingerprint ELIZA's schema was checked for


class Records(Protocol):
    """What the phases call to record the run; :class:`Ledger` and :class:`DryLedger`."""

    applied: str  # how the run report calls an action that went through
    progress: str  # the push phase as progress names it ("push", or a dry run's)

    def known_failures(self, entra_ids: Iterable[str]) -> None: ...

    def expect_creates(self, keys: Iterable[tuple[str, Kind]]) -> None: ...

    def batch_done(self) -> None: ...

    async def creating(self, entra_id: str, kind: Kind) -> None: ...

    def create_pending(self, entra_id: str, kind: Kind) -> bool: ...

    def pushed(self, action: Action, link: Link | None, eliza_id: int | None) -> None: ...

    def forget(self, entra_id: str, kind: Kind, eliza_id: int | None = None) -> None: ...

    def relink(self, link: Link) -> None: ...

    def failed(
        self,
        entra_id: str,
        kind: Kind,
        op: str,
        category: str,
        message: str,
        detail: Mapping[str, Any],
        version: int,
    ) -> None: ...

    def succeeded(self, entra_id: str) -> None: ...

    def settle(self, entra_id: str, version: int) -> None: ...

    def plan_current(self, fingerprint: str) -> None: ...

    def flush(self) -> None: ...

    def fields_checked(self, fingerprint: str) -> None: ...


_JournalRow = tuple[int, str, Kind, str, int | None, Mapping[str, Any]]
_LinkOp = tuple[str, Kind, Link | None]
# what one flush writes: failures and clearings (calls), journal rows, link ops, settlings
_Batch = tuple[list[Callable[[], object]], list[_JournalRow], list[_LinkOp], list[tuple[str, int]]]


class Ledger:
    """Writes through to the state store."""

    applied = "ok"
    progress = "push"

    def __init__(self, store: Store, run_id: int, now: Callable[[], datetime]) -> None:
        self.store = store
        self.run_id = run_id
        self.now = now
        self._failed: set[str] = set()  # Entra ids with a recorded failure
        # records not yet committed: the hot ones typed (written in bulk), failures as calls
        self._journal: list[_JournalRow] = []
        self._links: list[_LinkOp] = []
        self._settled: list[tuple[str, int]] = []
        self._calls: list[Callable[[], object]] = []
        self._count = 0
        self._offload = store.threadsafe
        self._marks = 0  # creating markers appended
        self._durable = 0  # ... and committed
        self._writing: asyncio.Future[None] | None = None  # a commit under way in a thread
        self._turn = threading.Condition()  # batches commit in the order they were taken
        self._taken = 0
        self._written = 0
        self._ahead: deque[tuple[str, Kind]] = deque()  # the batch's creates, in push order
        self._sent: set[tuple[str, Kind]] = set()  # ... whose marker was asked for
        self._premarked: dict[tuple[str, Kind], int] = {}  # marked ahead, unsent: mark number
        self._window = 1

    def _later(self) -> None:
        self._count += 1
        if self._count >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Commit every waiting record in one transaction (after any commit under way).

        Journal rows keep their order, and so do link saves and removals; failures (their own
        table) go first, in call order.
        """
        marks = self._marks
        ticket, batch = self._take()
        self._write(ticket, batch)
        self._durable = max(self._durable, marks)

    def _take(self) -> tuple[int, _Batch | None]:
        """What waits, with its place in the commit order (taken in the event loop only)."""
        batch: _Batch = (self._calls, self._journal, self._links, self._settled)
        self._journal, self._links, self._settled, self._calls = [], [], [], []
        self._count = 0
        self._taken += 1
        return self._taken, batch if any(batch) else None

    def _write(self, ticket: int, batch: _Batch | None) -> None:
        """Commit one batch once every batch taken before it is committed (any thread)."""
        with self._turn:
            self._turn.wait_for(lambda: self._written == ticket - 1)
            try:
                if batch is not None:
                    calls, journal, links, settled = batch
                    with self.store.batch():
                        for call in calls:
                            call()
                        self.store.write_records(journal, links, settled)
            finally:
                self._written = ticket
                self._turn.notify_all()

    async def _commit_marks(self, mine: int) -> None:
        """Until marker number ``mine`` is committed: join the commit under way, or start one
        in a worker thread with everything that waits."""
        while self._durable < mine:
            if self._writing is not None:
                await asyncio.shield(self._writing)
                continue
            done = self._writing = asyncio.get_running_loop().create_future()
            marks = self._marks
            ticket, batch = self._take()
            try:
                if self._offload:
                    await asyncio.to_thread(self._write, ticket, batch)
                else:
                    self._write(ticket, batch)
            except BaseException as exc:
                done.set_exception(exc)
                done.exception()  # its waiters see it; unawaited, it is not "never retrieved"
                raise
            else:
                self._durable = max(self._durable, marks)
                done.set_result(None)
            finally:
                self._writing = None

    def known_failures(self, entra_ids: Iterable[str]) -> None:
        """Objects with a failure from earlier runs: a success clears it."""
        self._failed = set(entra_ids)

    def expect_creates(self, keys: Iterable[tuple[str, Kind]]) -> None:
        """The creates a batch of the push may send, in the order it tries them."""
        self._ahead = deque(keys)
        self._sent.clear()

    def batch_done(self) -> None:
        """The batch is pushed: commit what waits, and delete the markers taken ahead of
        creates that were not sent (matched instead, or an earlier action failed)."""
        self._ahead.clear()
        self._sent.clear()
        self.flush()
        unused, self._premarked = list(self._premarked), {}
        if unused:
            self.store.unjournal(self.run_id, CREATING, unused)

    async def creating(self, entra_id: str, kind: Kind) -> None:
        """The journal marker of a create about to be sent: committed (with what waits)
        before this returns, so a lost POST response leaves it behind."""
        key = (entra_id, kind)
        self._sent.add(key)
        mine = self._premarked.pop(key, None)
        if mine is None:
            mine = self._mark(key)
            self._mark_ahead()
            self._window = min(AHEAD_MAX, self._window * 2)
        await self._commit_marks(mine)

    def _mark(self, key: tuple[str, Kind]) -> int:
        self._journal.append((self.run_id, key[0], key[1], CREATING, None, {}))
        self._marks += 1
        return self._marks

    def _mark_ahead(self) -> None:
        """Marker for the next creates of the batch not yet marked or sent."""
        taken, window = 0, min(self._window, AHEAD_MAX)
        while self._ahead and taken < window:
            key = self._ahead.popleft()
            if key not in self._sent and key not in self._premarked:
                self._premarked[key] = self._mark(key)
                taken += 1

    def create_pending(self, entra_id: str, kind: Kind) -> bool:
        """The journal shows an earlier create of this object whose outcome was never recorded
        (a marker this run took ahead of a create it has not sent does not count)."""
        ahead = (entra_id, kind) in self._premarked
        return any(
            e.kind == kind and e.action == CREATING and not (ahead and e.run_id == self.run_id)
            for e in self.store.journal_for(entra_id, 50)
        )

    def pushed(self, action: Action, link: Link | None, eliza_id: int | None) -> None:
        """What ELIZA accepted: the link (none once gone or ended) and its journal entry."""
        kept = None if link is None or link.status == LinkStatus.ENDED else link
        if action.op == Op.CREATE and (action.entra_id, action.kind) in self._premarked:
            self._window = 1  # marked ahead, then matched: creates and matches alternate
        changes = changes_json(action.changes)
        if action.groups_written is not None:
            before, after = action.groups_written
            changes[GROUPS] = [list(before), list(after)]
        self._links.append((action.entra_id, action.kind, kept))
        self._journal.append(
            (self.run_id, action.entra_id, action.kind, action.op.value, eliza_id, changes)
        )
        self._later()

    def forget(self, entra_id: str, kind: Kind, eliza_id: int | None = None) -> None:
        """The linked object is gone from ELIZA: drop the link, journal it (``gone``); the
        object is created again on the next run."""
        self._links.append((entra_id, kind, None))
        self._journal.append((self.run_id, entra_id, kind, GONE, eliza_id, {}))
        self._later()

    def relink(self, link: Link) -> None:
        """A link's status changed without a write to ELIZA (protected, or no longer)."""
        # committed at once (with what waits): a deprovisioning's memory must be stored
        # before the write it remembers for
        self._links.append((link.entra_id, link.kind, link))
        self.flush()

    def failed(
        self,
        entra_id: str,
        kind: Kind,
        op: str,
        category: str,
        message: str,
        detail: Mapping[str, Any],
        version: int,
    ) -> None:
        """An action failed or conflicted: it is retried after its backoff."""
        self._failed.add(entra_id)
        now = self.now()
        self._calls.append(
            lambda: self.store.record_failure(
                entra_id, kind, op, category, message, detail, version, now
            )
        )
        self._later()

    def succeeded(self, entra_id: str) -> None:
        """Every action of the object went through: clear its failures."""
        if entra_id in self._failed:
            self._calls.append(lambda: self._clear_failures(entra_id))
            self._failed.discard(entra_id)
            self._later()

    def _clear_failures(self, entra_id: str) -> None:
        for kind in Kind:
            self.store.clear_failure(entra_id, kind)

    def settle(self, entra_id: str, version: int) -> None:
        """The object's mirror version is fully pushed."""
        self._settled.append((entra_id, version))
        self._later()

    def plan_current(self, fingerprint: str) -> None:
        """Every object is planned under these settings (nothing left for later runs); after
        every other record, in a transaction of its own."""
        self.flush()
        self.store.set_meta(PLAN_FINGERPRINT, fingerprint)

    def fields_checked(self, fingerprint: str) -> None:
        """ELIZA's schema knows every field written under these settings."""
        self.store.set_meta(FIELDS_CHECKED, fingerprint)


class DryLedger:
    """A dry run's ledger: the same calls, nothing recorded."""

    applied = "planned"
    progress = "dry run (nothing written)"

    def known_failures(self, entra_ids: Iterable[str]) -> None:
        """Nothing recorded: nothing to clear."""

    def expect_creates(self, keys: Iterable[tuple[str, Kind]]) -> None:
        """Nothing is marked."""

    def batch_done(self) -> None:
        """Nothing waits."""

    async def creating(self, entra_id: str, kind: Kind) -> None:
        """Not recorded."""

    def create_pending(self, entra_id: str, kind: Kind) -> bool:
        """A dry run creates nothing that could be pending (and may not trust the journal)."""
        return False

    def pushed(self, action: Action, link: Link | None, eliza_id: int | None) -> None:
        """Not recorded."""

    def forget(self, entra_id: str, kind: Kind, eliza_id: int | None = None) -> None:
        """Not recorded."""

    def relink(self, link: Link) -> None:
        """Not recorded."""

    def failed(
        self,
        entra_id: str,
        kind: Kind,
        op: str,
        category: str,
        message: str,
        detail: Mapping[str, Any],
        version: int,
    ) -> None:
        """Not recorded."""

    def succeeded(self, entra_id: str) -> None:
        """Not recorded."""

    def settle(self, entra_id: str, version: int) -> None:
        """Not recorded."""

    def plan_current(self, fingerprint: str) -> None:
        """Not recorded."""

    def flush(self) -> None:
        """Nothing waits."""

    def fields_checked(self, fingerprint: str) -> None:
        """Not recorded: a dry run checks the schema every time."""
