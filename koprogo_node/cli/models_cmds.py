"""`koprogo-node models list|eval`: the shipped models, and how well they do.

`eval` reads the public data sets in place (`../shared/data`, or
`KOPROGO_SHARED_DATA`): the NAB subset with its label windows, and the
labelled household water traces, into which it also injects leaks. It prints
a table per data set and, as its last line, the whole result as JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .common import fail, print_json, table

EXIT_UNAVAILABLE = 3


@click.group()
def models() -> None:
    """Detection models: list them, evaluate them on public data."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool) -> None:
    """The shipped models, with size, sha256 and whether the file matches.

    \b
    Example:
      koprogo-node models list --json
    """
    from ..detect.models import list_models as entries

    found = entries()
    if as_json:
        print_json(found)
    else:
        rows = [
            [
                m["name"],
                str(m["size"]),
                (m["file_sha256"] or "-")[:16],
                "ok" if m["ok"] else m["problem"],
            ]
            for m in found
        ]
        click.echo(table(rows, ["MODEL", "BYTES", "FILE SHA256", "CHECK"]))
    if not all(m["ok"] for m in found):
        raise SystemExit(1)


@models.command("eval")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON line.")
@click.option("--seed", default=7, show_default=True, help="Leak injection seed.")
@click.option(
    "--data",
    "data_root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding nab/ and water-consumption-henrygustavo/"
    " [default: $KOPROGO_SHARED_DATA or ../shared/data].",
)
def evaluate(as_json: bool, seed: int, data_root: Path | None) -> None:
    """Precision, recall, F1 (and NAB score) per detector and baseline.

    \b
    Examples:
      koprogo-node models eval
      koprogo-node models eval --json | tail -1
    """
    from ..detect.datasets import shared_data_root
    from ..detect.onnx_runner import ModelIntegrityError

    root = data_root or shared_data_root()
    try:
        result = run_evaluations(root, seed)
    except ModelIntegrityError as exc:
        fail(f"cannot evaluate: {exc}", 1)
    if not as_json:
        click.echo(render(result))
    print_json_line(result)


def run_evaluations(root: Path, seed: int) -> dict:
    """Each evaluation whose data is present; fails if none is."""
    result: dict = {"data_root": str(root)}
    started = time.monotonic()
    if (root / "nab").is_dir():
        from ..detect.eval_nab import evaluate as nab

        result["nab"] = nab(root)
    if (root / "water-consumption-henrygustavo").is_dir():
        from ..detect.eval_water import evaluate as water

        result["water"] = water(root, seed=seed)
    if len(result) == 1:
        fail(
            f"no evaluation data under {root} (expected nab/ and"
            " water-consumption-henrygustavo/; set KOPROGO_SHARED_DATA or --data)",
            EXIT_UNAVAILABLE,
        )
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def print_json_line(result: dict) -> None:
    """The result as one JSON line (the evaluation's contract)."""
    click.echo(json.dumps(result, sort_keys=True, separators=(",", ":")))


def render(result: dict) -> str:
    """Human tables for whichever evaluations ran."""
    parts = []
    if "nab" in result:
        parts.append("NAB subset: alerts against the label windows\n" + _nab(result))
    if "water" in result:
        parts.append(_water(result["water"]))
    return "\n\n".join(parts) + "\n"


def _nab(result: dict) -> str:
    rows = [
        [
            name + _baseline(result["nab"], name),
            _f(d["precision"]),
            _f(d["recall"]),
            _f(d["f1"]),
            f"{d['nab_score']:.1f}",
        ]
        for name, d in result["nab"]["per_detector"].items()
    ]
    return table(rows, ["DETECTOR", "PRECISION", "RECALL", "F1", "NAB"])


def _water(water: dict) -> str:
    labels = [
        [
            name + _baseline(water, name),
            _f(d["leak_precision"]),
            _f(d["leak_recall"]),
            _f(d["leak_f1"]),
            _f(water["false_alarms_per_meter_month"].get(name)),
        ]
        for name, d in water["labels"].items()
    ]
    injected = water["leak_injection"]
    sizes = [str(s) for s in injected["sizes_l_per_h"]]
    rows = []
    for name, per_size in injected["per_detector"].items():
        cells = [
            f"{per_size[s]['within_24h_share']:.1%} / {_h(per_size[s]['median_delay_h'])}"
            for s in sizes
        ]
        rows.append([name + _baseline(water, name), *cells])
    return (
        "Household water: the set's own labels; false alarms on unmodified traces\n"
        + table(labels, ["DETECTOR", "PRECISION", "RECALL", "F1", "FALSE/METER-MONTH"])
        + "\n\nInjected constant leaks: share detected within 24 h / median delay\n"
        + table(rows, ["DETECTOR", *[f"{s} L/h" for s in sizes]])
    )


def _baseline(section: dict, name: str) -> str:
    return " (baseline)" if name in section.get("baselines", []) else ""


def _f(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _h(value) -> str:
    return "–" if value is None else f"{value:.0f} h"
