"""A technician token for scripts on the node that use the TCP API.

The CLI itself talks to the daemon on its control socket and needs no token.

At each start the daemon makes a fresh technician token and writes it to
`DATA_DIR/local-api-token` (mode 0600): whoever may read the data directory
(root, the `koprogo` group) may read the live API through the CLI, as they
could read the ledger itself. Nobody else learns it.
"""

from __future__ import annotations

from pathlib import Path

from .auth.tokens import TokenStore
from .auth.users import Role, write_private_file

LOCAL_TOKEN_FILE = "local-api-token"
LOCAL_TOKEN_NAME = "local-cli"


def write_local_token(tokens: TokenStore, data_dir: Path) -> None:
    """Replace the local token, in the store and in its file."""
    tokens.remove(LOCAL_TOKEN_NAME)
    plain = tokens.create(LOCAL_TOKEN_NAME, Role.TECHNICIAN)
    write_private_file(data_dir / LOCAL_TOKEN_FILE, plain)


def read_local_token(data_dir: Path) -> str | None:
    """The running daemon's local token, if this user may read it."""
    try:
        return (data_dir / LOCAL_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
