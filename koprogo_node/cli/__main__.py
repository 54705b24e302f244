"""`python -m koprogo_node.cli` runs the command line."""

from .main import main

main()
