"""The daemon: wires sources, ledger and web together and supervises them."""
