"""ELIZA's data in memory: objects per resource, the shared group id space, seeding, rules.

The rules that are the data's own live here: defaults on insert, what a delete takes with it,
serializer validation of a whole body, and the uniqueness rules ELIZA answers with 409.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from deltasync.sandbox.eliza.index import Index
from deltasync.sandbox.eliza.resources import (
    CUSTOMGROUP,
    FIELDS,
    MEMBERSHIP,
    ORGUNIT,
    PERSON,
    READ_ONLY,
    RESOURCES,
    SYSTEM_GROUPS,
    USER,
    defaults,
)
from deltasync.sandbox.eliza.validation import REQUIRED, USER_TAKEN, Invalid, clean


class ElizaStore:
    """Objects by resource and id; every method is thread-safe under the store's lock."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._data: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._next_id: dict[str, int] = dict.fromkeys(RESOURCES, 1)
        # System, custom and automatic org-unit groups share one id space.
        self._groups: dict[int, dict[str, Any]] = {
            gid: {"id": gid, "name": name, "kind": "system"} for gid, name in SYSTEM_GROUPS.items()
        }
        self._next_group_id = max(SYSTEM_GROUPS) + 1
        self._index = Index()
        self.membership_deletes = 0

    # ------------------------------------------------------------------ inspection
    def _snapshot(self, resource: str) -> dict[int, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._data[resource])

    @property
    def users(self) -> dict[int, dict[str, Any]]:
        """Users by id (a copy)."""
        return self._snapshot(USER)

    @property
    def persons(self) -> dict[int, dict[str, Any]]:
        """Persons (Mitarbeitende) by id (a copy)."""
        return self._snapshot(PERSON)

    @property
    def memberships(self) -> dict[int, dict[str, Any]]:
        """Memberships by id (a copy)."""
        return self._snapshot(MEMBERSHIP)

    @property
    def orgunits(self) -> dict[int, dict[str, Any]]:
        """Org units by id (a copy)."""
        return self._snapshot(ORGUNIT)

    @property
    def customgroups(self) -> dict[int, dict[str, Any]]:
        """Custom groups by (group) id (a copy)."""
        return self._snapshot(CUSTOMGROUP)

    @property
    def groups(self) -> dict[int, dict[str, Any]]:
        """Every group (system, custom, automatic ``orgunit_<id>``) by id: id, name, kind."""
        with self._lock:
            return copy.deepcopy(self._groups)

    # ------------------------------------------------------------------ seeding
    def _insert(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as a migration or an admin would: defaults filled, no validation."""
        with self._lock:
            obj: dict[str, Any] = defaults(resource)
            obj.update(dict.fromkeys(READ_ONLY[resource]))
            if resource == USER:
                obj["is_superuser"] = False
            obj.update(fields)
            if "id" in fields:
                oid = int(fields["id"])
            elif resource == CUSTOMGROUP:
                oid = self._next_group_id
            else:
                oid = self._next_id[resource]
            self._next_id[resource] = max(self._next_id[resource], oid + 1)
            if resource == CUSTOMGROUP:
                self._next_group_id = max(self._next_group_id, oid + 1)
                self._groups[oid] = {"id": oid, "name": obj["name"], "kind": "custom"}
            now = self._now()
            obj = {
                "id": oid,
                "uuid": str(fields.get("uuid") or uuid.uuid4()),
                **{k: v for k, v in obj.items() if k not in ("id", "uuid")},
                "created": fields.get("created") or now,
                "modified": fields.get("modified") or now,
            }
            if resource == USER:
                obj["groups"] = sorted(set(obj["groups"]))
            old = self._data[resource].get(oid)
            if old is not None:
                self._index.remove(resource, oid, old)
            self._data[resource][oid] = obj
            self._index.add(resource, oid, obj)
            if resource == ORGUNIT:
                gid = self._next_group_id
                self._next_group_id += 1
                self._groups[gid] = {"id": gid, "name": f"orgunit_{oid}", "kind": "orgunit"}
            return copy.deepcopy(obj)

    def add_user(self, **fields: Any) -> dict[str, Any]:
        """Seed a user (any field, read-only ones such as ``is_superuser`` included)."""
        return self._insert(USER, fields)

    def add_person(self, **fields: Any) -> dict[str, Any]:
        """Seed a person (Mitarbeitende)."""
        return self._insert(PERSON, fields)

    def add_orgunit(
        self, titel: str, parent: int | None = None, status: str = "aktiv"
    ) -> dict[str, Any]:
        """Seed an org unit; its automatic ``orgunit_<id>`` group is created with it."""
        return self._insert(ORGUNIT, {"titel": titel, "parent": parent, "status": status})

    def add_membership(
        self,
        mitarbeiter: int,
        orgunit: int,
        *,
        funktion: int | None = None,
        von: str | None = None,
        bis: str | None = None,
    ) -> dict[str, Any]:
        """Seed a membership of a person in an org unit."""
        fields = {"mitarbeiter": mitarbeiter, "orgunit": orgunit, "funktion": funktion}
        return self._insert(MEMBERSHIP, {**fields, "von": von, "bis": bis})

    def add_customgroup(self, name: str, **fields: Any) -> dict[str, Any]:
        """Seed a custom group; its id comes from the shared group id space."""
        return self._insert(CUSTOMGROUP, {"name": name, **fields})

    def orgunit_group(self, orgunit_id: int) -> int:
        """The id of the automatic group ``orgunit_<orgunit_id>``."""
        with self._lock:
            name = f"orgunit_{orgunit_id}"
            return next(gid for gid, g in self._groups.items() if g["name"] == name)

    # ------------------------------------------------------------------ rules
    def _replace(self, resource: str, oid: int, obj: dict[str, Any]) -> None:
        """Store a changed object under its id, keeping the index in step."""
        self._index.update(resource, oid, self._data[resource][oid], obj)
        self._data[resource][oid] = obj

    def _delete(self, resource: str, oid: int) -> None:
        """Delete one object and what hangs on it (DRF's on_delete rules)."""
        self._index.remove(resource, oid, self._data[resource].pop(oid))
        if resource == USER:
            for pid in self._index.ids(PERSON, "user", oid):
                self._replace(PERSON, pid, {**self._data[PERSON][pid], "user": None})
        elif resource == PERSON:
            for pid in self._index.ids(PERSON, "vorgesetzter", oid):
                self._replace(PERSON, pid, {**self._data[PERSON][pid], "vorgesetzter": None})
            for mid in sorted(self._index.ids(MEMBERSHIP, "mitarbeiter", oid)):
                self._index.remove(MEMBERSHIP, mid, self._data[MEMBERSHIP].pop(mid))
        elif resource == MEMBERSHIP:
            self.membership_deletes += 1
        elif resource == CUSTOMGROUP:
            del self._groups[oid]
            for user in self._data[USER].values():
                user["groups"] = [g for g in user["groups"] if g != oid]

    def _validate(
        self, resource: str, body: Mapping[str, Any], oid: int | None, *, partial: bool
    ) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """DRF serializer validation: unknown and read-only fields are ignored."""
        data: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, spec in FIELDS[resource].items():
            if name not in body:
                if spec.required and not partial:
                    errors[name] = [REQUIRED]
                continue
            try:
                data[name] = clean(spec, body[name], self._data, self._groups)
            except Invalid as exc:
                errors[name] = [str(exc)]
        user = data.get("user") if resource == PERSON and "user" not in errors else None
        if user is not None and self._index.ids(PERSON, "user", user) - {oid}:
            errors["user"] = [USER_TAKEN]
        return data, errors

    def _conflict(self, resource: str, obj: Mapping[str, Any], oid: int | None) -> str | None:
        """The uniqueness rules ELIZA answers with 409 (not DRF's usual 400)."""

        def clash(name: str) -> bool:
            # the field's filter kind says how ELIZA compares: username and email ignore case
            value = obj.get(name)
            if value in (None, ""):
                return False
            return bool(self._index.ids(resource, name, value) - {oid})

        if resource == USER:
            if clash("username"):
                return "Ein Benutzer mit diesem Benutzernamen existiert bereits."
            if clash("email"):
                return "Ein Benutzer mit dieser E-Mail-Adresse existiert bereits."
            if clash("remote_key"):
                return "Ein Benutzer mit diesem remote_key existiert bereits."
        elif resource == PERSON:
            if clash("remote_key"):
                return "Mitarbeitende mit diesem remote_key existiert bereits."
        elif resource == CUSTOMGROUP:
            name = obj.get("name")
            if any(g["name"] == name for gid, g in self._groups.items() if gid != oid):
                return "Eine Gruppe mit diesem Namen existiert bereits."
        return None

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat().replace("+00:00", "Z")
