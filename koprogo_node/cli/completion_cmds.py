"""`koprogo-node completion SHELL`: tab completion for commands and options."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
PROGRAM = "koprogo-node"
# Click's completion protocol: the script calls us back with this variable set.
COMPLETE_VAR = "_KOPROGO_NODE_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Examples:
      koprogo-node completion bash > /etc/bash_completion.d/koprogo-node
      eval "$(koprogo-node completion bash)"      # this shell only
      koprogo-node completion fish > ~/.config/fish/completions/koprogo-node.fish
    """
    root = ctx.find_root().command
    script = get_completion_class(shell)(root, {}, PROGRAM, COMPLETE_VAR)
    click.echo(script.source())
