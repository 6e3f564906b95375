"""What a link remembers beyond the values ELIZA accepted: the keys the planner writes.

ELIZA's field names live in :mod:`deltasync.fields`; these are the sync's own.
"""

from __future__ import annotations

from typing import Final

#: In ``pushed``: the groups the sync added to a user (it never removes any other group).
GROUPS_ADDED: Final = "groups_added"
#: In ``pushed``: the ELIZA ids of the managed (Entra) groups the user was last put in.
MANAGED_GROUPS: Final = "managed_groups"
#: In a group's journal entry: the ELIZA users holding it (a deletion's [before, []]; an
#: undo's re-creation [[], after]), so that undo can give them the group back or take it.
GROUP_MEMBERS: Final = "members"
#: The keys of ``pushed`` that are the sync's memory, never ELIZA fields.
MEMORY_KEYS: Final = frozenset({GROUPS_ADDED, MANAGED_GROUPS})
#: In a person's ``saved``: the employment type before deprovisioning.
SAVED_EMPLOYMENT: Final = "anstellungsart"
#: In a person's ``saved``: deprovisioning set the exit date (ELIZA had none).
SAVED_EXIT_DATE_SET: Final = "austrittsdatum_set"
#: In a person's ``saved``: the exit date deprovisioning set.
SAVED_EXIT_DATE: Final = "austrittsdatum"
#: In a membership's ``saved``: deprovisioning ended it (coming back reopens it).
ENDED_BY_SYNC: Final = "ended_by_sync"
