"""The CRC that DSMR 4+ and e-MUCS telegrams end with (CRC-16/ARC)."""

from __future__ import annotations


def crc16(data: bytes) -> int:
    """Return the CRC-16/ARC of `data`, computed by dsmr_parser."""
    # Imported here: dsmr_parser costs some 15 MB, and the simulated building
    # needs this function without the rest of the P1 driver.
    from dsmr_parser.parsers import TelegramParser

    return TelegramParser.crc16(data.decode("latin-1"))
