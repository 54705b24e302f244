"""Which building total a channel belongs to, from its name.

Drivers name channels `<source>[.<device>].<channel>`; the last part tells
what is measured (see drivers/p1 for the full list).
"""

from __future__ import annotations

FAMILIES: dict[str, str] = {
    "import_t1": "electricity_import",
    "import_t2": "electricity_import",
    "import_total": "electricity_import",
    "export_t1": "electricity_export",
    "export_t2": "electricity_export",
    "export_total": "electricity_export",
    "power_import": "power_import",
    "power_export": "power_export",
    "water": "water",
    "gas": "gas",
    "heat": "heat",
}
SUMMED = ("electricity_import", "electricity_export", "water", "gas", "heat")


def family(sensor: str) -> str | None:
    """Return the building total that `sensor` adds to, or None."""
    channel = sensor.rsplit(".", 1)[-1]
    if channel.startswith("gas_"):
        channel = "gas"
    return FAMILIES.get(channel)
