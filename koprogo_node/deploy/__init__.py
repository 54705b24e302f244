"""Installing and running the node on its own machine: first boot, upgrades."""
