"""`koprogo-node doctor`: every health check, with a one-line fix for each."""

from __future__ import annotations

import sys

import click

from ..config.model import Config
from ..doctor.checks import Situation, run_all
from ..doctor.result import EXIT_CODES, Finding, Level, worst
from ..errors import ConfigError
from ..ledger.lock import holder_pid
from .common import Context, FiniteRange, data_dir_options, print_json
from .daemon_client import live_status
from .status_cmds import STALE_AFTER_S


@click.command()
@data_dir_options
@click.option(
    "--stale-after",
    type=FiniteRange(min=1),
    default=STALE_AFTER_S,
    show_default=True,
    metavar="SECONDS",
    help="A channel with no reading for this long is stale.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def doctor(obj: Context, config_path, data_dir, stale_after: float, as_json: bool):
    """Check the node and say how to fix what is wrong.

    Checks the configuration, the daemon and its systemd unit, the clock, disk
    space and storage wear, the ledger's integrity, each sensor source, the
    MQTT broker, the peers and the model files. Each says OK, WARN or FAIL
    (SKIP where it does not apply). Exit code: 0 all OK, 4 the worst is a
    WARN, 1 something FAILs.

    \b
    Examples:
      koprogo-node doctor
      koprogo-node doctor --json | jq '.checks[] | select(.level != "OK")'
    """
    obj.override(config_path, data_dir)
    findings = run_all(situation(obj, stale_after))
    level = worst(findings)
    if as_json:
        print_json(
            {
                "worst": level.name,
                "exit_code": EXIT_CODES[level],
                "checks": [f.as_dict() for f in findings],
            }
        )
    else:
        click.echo(render(findings))
    sys.exit(EXIT_CODES[level])


def situation(obj: Context, stale_after_s: float) -> Situation:
    """Gather what the checks share; a bad configuration is a finding, not a stop."""
    try:
        config, problem = obj.config(), None
    except ConfigError as exc:
        config, problem = Config(), f"invalid configuration: {exc}"
    where = obj.config_path()
    data_dir = obj.data_dir()
    pid = holder_pid(data_dir)
    return Situation(
        config=config,
        config_problem=problem,
        config_path=where,
        data_dir=data_dir,
        db_path=data_dir / config.ledger.file,
        pid=pid,
        live=live_status(data_dir),
        stale_after_s=stale_after_s,
    )


def render(findings: list[Finding]) -> str:
    """One line per check, the fix indented under anything not OK."""
    width = max(len(f.check) for f in findings)
    lines = []
    for f in findings:
        lines.append(f"{f.level.name:<4}  {f.check:<{width}}  {f.detail}")
        if f.level >= Level.WARN and f.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {f.fix}")
    return "\n".join(lines)
