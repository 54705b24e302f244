"""Who may read which meter inside the building.

One apartment's meter is its owner's private affair: co-owners (and the
anonymous readers of a demo) see the building's meters only; technicians and
admins see every lot. A lot meter is a channel matching
`federation.privacy.lot_pattern`, the same rule the federation's privacy gate
uses.
"""

from __future__ import annotations

import re

from .auth import Caller, Role


def may_see(caller: Caller, config, sensor_name: str) -> bool:
    """Whether `caller` may read the channel `sensor_name`."""
    if caller.at_least(Role.TECHNICIAN):
        return True
    return re.search(config.federation.privacy.lot_pattern, sensor_name) is None
