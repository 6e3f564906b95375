"""The ELIZA field names and values the planner decides itself (not mapped from Entra).

Until ``deltasync/fields.py`` (the one field table) is merged, the planner's own names live
here, so no phase spells them as literals.
"""

from __future__ import annotations

# user
REMOTE_KEY = "remote_key"  # the Entra object id, on users and persons
IS_ACTIVE = "is_active"
GROUPS = "groups"
NOT_NULLABLE_USER_FIELDS = ("first_name", "last_name")

# person
USER = "user"  # the person's ELIZA user
MANAGER = "vorgesetzter"  # an Entra manager id, written as the manager's ELIZA person id
EMPLOYMENT = "anstellungsart"
EXIT_DATE = "austrittsdatum"
FORMER = "ehemalig"  # the employment type of a deprovisioned person
DEFAULT_EMPLOYMENT = "intern"  # restored when the employment type before was unknown

# membership
MEMBER = "mitarbeiter"
ORGUNIT = "orgunit"
VALID_FROM = "von"
VALID_UNTIL = "bis"

# what a link remembers beyond the pushed values
GROUPS_ADDED = "groups_added"  # groups the sync added (``pushed``), never removed by it
SAVED_EMPLOYMENT = "anstellungsart"  # ``saved``: the employment type before deprovisioning
SAVED_EXIT_DATE_SET = "austrittsdatum_set"  # ``saved``: deprovisioning set the exit date
SAVED_EXIT_DATE = "austrittsdatum"  # ``saved``: the exit date it set
ENDED_BY_SYNC = "ended_by_sync"  # ``saved``: a membership ended by deprovisioning
