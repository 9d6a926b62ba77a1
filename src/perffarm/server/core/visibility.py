"""The one visibility rule: runs, results and alerts of approved machines are shown to
everybody; those of a machine not approved yet only to its owner (the signed-in user it
belongs to, the *viewer*) and to admins. The store turns this rule into a WHERE clause
(``store/visibility.py``); this is the same rule for one machine already read.
"""

from __future__ import annotations


def can_see(approved: bool, owner_user_id: int | None, *, admin: bool, viewer: int | None) -> bool:
    return admin or bool(approved) or (viewer is not None and owner_user_id == viewer)
