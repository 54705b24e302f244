"""`koprogo-node`: the daemon, the demo and the technician's commands.

Exit codes: 0 success; 1 a check failed (e.g. `ledger verify` found a bad
block, `doctor` found a FAIL); 2 bad usage or invalid configuration; 3 the
ledger or a device is unavailable (missing, busy, unreadable); 4 `doctor`
found warnings but no failure; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
import structlog

from .. import config as config_mod
from ..config import DEFAULT_CONFIG_PATH
from ..errors import ConfigError, KoprogoError
from ..logs import configure
from . import (
    alerts_cmds,
    completion_cmds,
    doctor_cmds,
    federation_cmds,
    keys_cmds,
    ledger_cmds,
    models_cmds,
    peers_cmds,
    readings_cmds,
    sensors_check_cmds,
    sensors_cmds,
    status_cmds,
    support_cmds,
)
from .common import Context, FiniteRange, data_dir_options, fail

EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3
log = structlog.get_logger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="koprogo-node", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="KOPROGO_CONFIG",
    help="TOML configuration [env KOPROGO_CONFIG; default "
    "/etc/koprogo-node/node.toml if present].",
)
@click.option(
    "--data-dir",
    metavar="DIR",
    envvar="KOPROGO_DATA_DIR",
    help="State directory [env KOPROGO_DATA_DIR; default /var/lib/koprogo-node].",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """Edge node of a co-owned building: meters in, verifiable ledger out."""
    ctx.obj = Context(config_path, data_dir)


@cli.command()
@click.option("--config", "config_path", metavar="PATH", envvar="KOPROGO_CONFIG")
@click.option("--data-dir", metavar="DIR", envvar="KOPROGO_DATA_DIR")
@click.option(
    "--duration",
    type=FiniteRange(min=0),
    metavar="SECONDS",
    help="Stop after this many seconds (default: run until stopped).",
)
@click.pass_obj
def run(
    obj: Context, config_path: str | None, data_dir: str | None, duration: float | None
) -> None:
    """Run the node daemon in the foreground (systemd's ExecStart).

    \b
    Example:
      koprogo-node run --config /etc/koprogo-node/node.toml
    """
    obj.follow_daemon = False
    obj.override(config_path, data_dir)
    cfg = obj.config()
    configure(cfg.log.level, cfg.log.format)
    from ..daemon.node import Node

    if obj.config_path() is None:
        log.warning(
            "no_config_file",
            looked_at=str(DEFAULT_CONFIG_PATH),
            hint="pass --config or set KOPROGO_CONFIG; running with no sources",
        )
    _run_node(Node(cfg, obj.data_dir(), config_path=obj.config_path()), duration)


def _run_node(node, duration: float | None) -> None:
    asyncio.run(node.run(duration))


@cli.command()
@click.option(
    "--duration",
    type=FiniteRange(min=0),
    metavar="SECONDS",
    help="Stop after this many seconds (default: until Ctrl-C).",
)
@click.option(
    "--data-dir",
    metavar="DIR",
    default="demo-data",
    show_default=True,
    help="Where the demo keeps its ledger (reused across runs).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--speed",
    type=FiniteRange(min=0.01, max=100_000),
    help="Simulated seconds per real second [default: 1440, a day a minute;"
    " 240 with --nodes, so that several buildings' P1 telegrams fit on two"
    " cores].",
)
@click.option(
    "--lots",
    type=click.IntRange(1, 200),
    help="Apartments per building [default: 12; 20 with --nodes]. Below 10,"
    " the privacy gate withholds every total.",
)
@click.option(
    "--nodes",
    type=click.IntRange(1, 9),
    default=1,
    show_default=True,
    help="Federated buildings, each a daemon with its page on --port + i.",
)
@click.option("--member", type=int, hidden=True)
@click.option("--gossip-port", type=int, hidden=True)
@click.option("--federation-key", hidden=True)
@click.option("--bootstrap", multiple=True, hidden=True)
def demo(
    duration: float | None,
    data_dir: str,
    port: int,
    speed: float | None,
    lots: int | None,
    nodes: int,
    **federated,
) -> None:
    """Run a simulated building plus a replay of real data, with the dashboard.

    With --nodes N, runs N federated buildings that exchange their anonymised
    aggregates; each page shows the others' figures.

    \b
    Examples:
      koprogo-node demo --duration 60 --port 8080
      koprogo-node demo --nodes 3 --port 8080   # pages on 8080, 8081, 8082
    """
    if speed is None:
        speed = 1440.0 if nodes == 1 else 240.0
    if lots is None:
        lots = 12 if nodes == 1 else 20
    if nodes > 1:
        from .demo_federation import run_federated_demo

        code = run_federated_demo(Path(data_dir), port, speed, lots, duration, nodes)
        sys.exit(code)
    from .demo import Member, run_demo

    member = None
    if federated["member"] is not None:
        member = Member(
            federated["member"],
            federated["gossip_port"],
            federated["federation_key"],
            tuple(federated["bootstrap"]),
        )
    run_demo(Path(data_dir), port, speed, lots, duration, member)


@cli.group("config")
def config_group() -> None:
    """Check and show configuration."""


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def config_validate(path: Path) -> None:
    """Check a configuration file; exit 2 and name the bad key if invalid.

    Also builds every source's driver, so driver-level mistakes (a bad
    decryption key, an unknown time zone) are found here too.

    \b
    Example:
      koprogo-node config validate /etc/koprogo-node/node.toml
    """
    from ..drivers.registry import build_source

    try:
        cfg = config_mod.load(path)
        for source in cfg.sources:
            build_source(source)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}", EXIT_USAGE)
    click.echo(f"OK: {path} ({len(cfg.sources)} sources)")


@config_group.command("show")
@data_dir_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def config_show(obj: Context, config_path, data_dir, as_json: bool) -> None:
    """Print the effective configuration as TOML, secrets masked.

    \b
    Example:
      koprogo-node config show --config /etc/koprogo-node/node.toml
    """
    from .config_cmds import show

    obj.override(config_path, data_dir)
    show(obj.config(), as_json)


cli.add_command(status_cmds.status)
cli.add_command(doctor_cmds.doctor)
cli.add_command(readings_cmds.readings)
cli.add_command(ledger_cmds.ledger)
cli.add_command(sensors_cmds.sensors)
sensors_cmds.sensors.add_command(sensors_check_cmds.list_cmd)
sensors_cmds.sensors.add_command(sensors_check_cmds.test_cmd)
cli.add_command(keys_cmds.keys)
cli.add_command(federation_cmds.federation)
cli.add_command(peers_cmds.peers)
cli.add_command(models_cmds.models)
cli.add_command(alerts_cmds.alerts)
cli.add_command(completion_cmds.completion)
cli.add_command(support_cmds.support_bundle_cmd)


def main() -> None:
    """Console entry point: no traceback reaches the user for known errors."""
    # A command's own output is on stdout; drivers it runs only say on
    # stderr what went wrong (`run` and `demo` set the configured level).
    configure("warning")
    try:
        cli.main(standalone_mode=False, complete_var=completion_cmds.COMPLETE_VAR)
        sys.stdout.flush()  # a full disk under stdout is found here, not at exit
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        click.echo(f"error: invalid configuration: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except KoprogoError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error for us.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except OSError as exc:  # a full disk or a read-only card under our output
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        sys.exit(130)
