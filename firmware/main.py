"""Entry point: MicroPython runs this file after boot.py."""

from kpsat.errors import ConfigError
from kpsat.settings import load

CRASH_RESET_DELAY_S = 10


def main(config_path="config.json"):
    """Start the satellite; a bad config stops it with a message, no reboot loop."""
    try:
        config = load(config_path)
    except ConfigError as exc:
        print("koprogo satellite not started:", exc)
        return
    from kpsat.app import Satellite
    from kpsat.board import Board

    try:
        Satellite(config, Board(config)).run()
    except Exception as exc:  # the board is unattended: restart, do not hang
        import sys
        import time

        import machine

        sys.print_exception(exc)
        time.sleep(CRASH_RESET_DELAY_S)
        machine.reset()


if __name__ == "__main__":
    main()
