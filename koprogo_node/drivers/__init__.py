"""Sensor drivers: bytes from devices in, core readings out."""
