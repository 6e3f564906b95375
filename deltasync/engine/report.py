"""What one run did: :class:`RunReport`, rendered for people by the CLI and as JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from deltasync import fields as f
from deltasync.plan.actions import Action, AddToGroups, Op, Ref, empty

#: How a dry run's stand-in id (negative: the object is not created yet) reads, per field.
_PLACEHOLDERS = {
    f.PERSON_USER: "(new user)",
    f.MANAGER: "(the new person)",
    f.MEMBER: "(the new person)",
}


_DONE = ("ok", "planned")

#: Actions a run report holds (the human report and ``--json``); the counts stay exact.
KEEP_ACTIONS = 500

ActionJson = dict[str, Any]


class ActionSink(Protocol):
    """Where every action of a run goes as it comes (a JSON-lines file, say)."""

    def write(self, action: ActionJson) -> None: ...

    def replay(self) -> Iterator[ActionJson]:
        """Every action written so far, in the order written."""
        ...


class ActionLog:
    """The actions of a run: counted exactly by kind and operation, the first ``keep`` held.

    A run of 100,000 users has a few hundred thousand actions; holding a dict for each would
    cost hundreds of MB. Every action is in the journal anyway, and ``sink`` (set by the
    caller: a JSON-lines file for ``--json-actions`` or a dry run's listing) receives each
    one as it comes and reads them back, in the order they came, when more were done than
    held.
    """

    def __init__(self, keep: int = KEEP_ACTIONS) -> None:
        self.keep = keep
        self.kept: list[ActionJson] = []
        self.total = 0
        self.by_kind: dict[str, dict[str, int]] = {}
        self.adopted = {"objects": 0, "overwritten": 0, "kept": 0}
        self.sink: ActionSink | None = None

    def append(self, a: ActionJson) -> None:
        """Count one action, hand it to the sink, hold it while fewer than ``keep`` are."""
        self.total += 1
        if a["result"] in _DONE:
            ops = self.by_kind.setdefault(a["kind"], {})
            ops[a["op"]] = ops.get(a["op"], 0) + 1
            marks = a.get("adoption")
            if marks:
                values = list(marks.values())
                self.adopted["objects"] += 1
                self.adopted["overwritten"] += values.count("overwritten")
                self.adopted["kept"] += values.count("kept")
        if self.sink is not None:
            self.sink.write(a)
        if len(self.kept) < self.keep:
            self.kept.append(a)

    def extend(self, items: Iterable[ActionJson]) -> None:
        for a in items:
            self.append(a)

    def sort(self, key: Callable[[ActionJson], Any]) -> None:
        """Order the held actions (all of them when none was left out)."""
        self.kept.sort(key=key)

    @property
    def truncated(self) -> int:
        """How many actions the report does not hold."""
        return self.total - len(self.kept)

    def every(self) -> Iterator[ActionJson]:
        """Every action: the held ones, or, when some were left out, all of them from the
        sink's file as they came (None of the file: only the held ones)."""
        if self.truncated and self.sink is not None:
            return self.sink.replay()
        return iter(self.kept)

    def __iter__(self) -> Iterator[ActionJson]:
        return iter(self.kept)

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return not self.truncated and self.kept == other
        if isinstance(other, ActionLog):
            return (self.total, self.kept) == (other.total, other.kept)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass
class RunReport:
    """What one run did; rendered for people by the CLI and as JSON with --json."""

    command: str
    dry_run: bool
    run_id: int | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    round_kind: str | None = None
    full_round_reason: str | None = None
    round_complete: bool = False
    pages: int = 0
    objects_seen: int = 0
    objects_changed: int = 0
    planned_objects: int = 0
    deferred_objects: int = 0
    out_of_scope: dict[str, int] = field(default_factory=dict)  # reason -> objects left out
    actions: ActionLog = field(default_factory=ActionLog)
    failures: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    threshold: str | None = None
    warnings: list[str] = field(default_factory=list)
    graph_requests: int = 0
    eliza_requests: int = 0
    eliza_writes: int = 0
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    undo_of: int | None = None  # the run an ``undo`` run put back
    trace: list[str] = field(default_factory=list)  # sync --user: the steps, for people

    @property
    def exit_code(self) -> int:
        """0, 3 (objects failed or conflicted) or 4 (deactivations held); a dry run is 0."""
        if self.error is not None:
            return 1
        if self.dry_run:
            return 0
        if self.held:
            return 4
        if self.failures or self.conflicts:
            return 3
        return 0

    @property
    def status(self) -> str:
        """A one-word summary for the runs table."""
        return {0: "ok", 1: "failed", 3: "partial", 4: "held"}[self.exit_code]

    def counts(self) -> dict[str, dict[str, int]]:
        """Applied (or, in a dry run, planned) actions by kind and operation."""
        return {kind: dict(ops) for kind, ops in self.actions.by_kind.items()}

    def adoption(self) -> dict[str, int]:
        """Adopted existing ELIZA objects, and their values overwritten and kept."""
        return dict(self.actions.adopted)

    def summary_lines(self) -> list[str]:
        """The adoption and out-of-scope lines people read under the counts."""
        lines = []
        adopted = self.adoption()
        if adopted["objects"]:
            n = adopted["objects"]
            verb = "would adopt" if self.dry_run else "adopted"
            lines.append(
                f"{verb} {n} existing ELIZA object{'s' if n != 1 else ''}: "
                f"{adopted['overwritten']} value{'s' if adopted['overwritten'] != 1 else ''} "
                f"overwritten, {adopted['kept']} kept because Entra has none"
            )
        if self.out_of_scope:
            total = sum(self.out_of_scope.values())
            why = ", ".join(f"{k}: {v}" for k, v in sorted(self.out_of_scope.items()))
            lines.append(
                f"{total} Entra user{'s' if total != 1 else ''} out of scope, left alone ({why})"
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The JSON run report."""
        return {
            "run_id": self.run_id,
            "command": self.command,
            "dry_run": self.dry_run,
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "round": {
                "kind": self.round_kind,
                "full_round_reason": self.full_round_reason,
                "complete": self.round_complete,
                "pages": self.pages,
                "objects_seen": self.objects_seen,
                "objects_changed": self.objects_changed,
            },
            "requests": {
                "graph": self.graph_requests,
                "eliza": self.eliza_requests,
                "eliza_writes": self.eliza_writes,
            },
            "planned_objects": self.planned_objects,
            "deferred_objects": self.deferred_objects,
            "out_of_scope": dict(sorted(self.out_of_scope.items())),
            "counts": self.counts(),
            "adoption": self.adoption(),
            "actions": list(self.actions),
            "actions_total": self.actions.total,
            "actions_truncated": self.actions.truncated,
            "failures": self.failures,
            "conflicts": self.conflicts,
            "held": self.held,
            "threshold": self.threshold,
            "warnings": self.warnings,
            "error": self.error,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "undo_of": self.undo_of,
            "trace": self.trace,
        }


def _json_value(value: Any, name: str = "") -> Any:
    if isinstance(value, Ref):
        return f"<{value.kind.value} of {value.entra_id}>"
    if isinstance(value, AddToGroups):
        return [f"+{i}" for i in value.ids]
    if name in _PLACEHOLDERS and isinstance(value, int) and value < 0:
        return _PLACEHOLDERS[name]
    return value


def _real_id(eliza_id: int | None) -> int | None:
    """A dry run's stand-in objects have negative ids; reports show no id for them."""
    return eliza_id if eliza_id is not None and eliza_id > 0 else None


def changes_json(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    """Changes as JSON: field -> [old, new], references and group additions spelled out."""
    return {k: [_json_value(old, k), _json_value(new, k)] for k, (old, new) in changes.items()}


def adoption(a: Action) -> dict[str, str]:
    """An adopted object's fields: ``overwritten`` (ELIZA's value replaced by Entra's) or
    ``kept`` (Entra has none, ELIZA's stays); empty for any other action."""
    if a.op != Op.MATCH:
        return {}
    out = {
        k: "overwritten"
        for k, (old, _) in a.changes.items()
        if k not in (f.GROUPS, f.REMOTE_KEY) and not empty(old)
    }
    out.update(dict.fromkeys(a.kept or {}, "kept"))
    return out


def action_json(a: Action, result: str, eliza_id: int | None = None) -> dict[str, Any]:
    """One action as the report lists it; ``result`` is ok, planned, held, error or conflict.

    ``groups`` (only when the action changes managed groups): "+name" / "−name" entries.
    """
    extra = {"groups": list(a.shown_groups)} if a.shown_groups else {}
    return {
        "entra_id": a.entra_id,
        "label": a.label,
        "kind": a.kind.value,
        "op": a.op.value,
        "eliza_id": _real_id(eliza_id if eliza_id is not None else a.eliza_id),
        "changes": changes_json(a.changes),
        "reason": a.reason,
        "result": result,
        **_adopted_json(a),
        **extra,
    }


def _adopted_json(a: Action) -> dict[str, Any]:
    if a.op != Op.MATCH:
        return {}
    marks = adoption(a)
    kept = {k: _json_value(v, k) for k, v in (a.kept or {}).items()}
    return {"adoption": marks, "kept": kept}
