"""The `koprogo-node` command line."""
