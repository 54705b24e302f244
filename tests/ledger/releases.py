"""Other releases of koprogo-node, made from this checkout for upgrade tests.

A "future" release is a copy of the package whose schema has one more
migration. It runs from a source tree (PYTHONPATH) or from a wheel. The
wheel is zipped here from the files, as a pure-Python wheel is: the build
backend pyproject.toml names is not in the test environment, and fetching
it would make the suite depend on the network.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tomllib
import zipfile
from pathlib import Path

CHECKOUT = Path(__file__).parents[2]
PACKAGE = "koprogo_node"
ANCHOR = "SCHEMA_VERSION = len(MIGRATIONS)"


def future_tree(dest: Path, migration_code: str) -> Path:
    """Copy the package under `dest` with `migration_code` appended to MIGRATIONS.

    `migration_code` is Python run in schema.py just before the version is
    computed; it must rebind MIGRATIONS. Returns `dest`, for PYTHONPATH.
    """
    shutil.copytree(
        CHECKOUT / PACKAGE,
        dest / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    schema = dest / PACKAGE / "ledger" / "schema.py"
    text = schema.read_text()
    if text.count(ANCHOR) != 1:
        raise AssertionError(f"schema.py no longer has one line {ANCHOR!r}")
    schema.write_text(text.replace(ANCHOR, f"{migration_code}\n\n\n{ANCHOR}"))
    return dest


def build_wheel(tree: Path, version: str, out_dir: Path) -> Path:
    """Zip the package in `tree` as koprogo_node-VERSION-py3-none-any.whl."""
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    dist_info = f"{PACKAGE}-{version}.dist-info"
    files: dict[str, bytes] = {
        path.relative_to(tree).as_posix(): path.read_bytes()
        for path in sorted((tree / PACKAGE).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    requires = "".join(f"Requires-Dist: {dep}\n" for dep in project["dependencies"])
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {version}\n"
        f"Requires-Python: {project['requires-python']}\n{requires}"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    scripts = "".join(f"{k} = {v}\n" for k, v in project["scripts"].items())
    files[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    record = [
        f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()
    ]
    files[f"{dist_info}/RECORD"] = (
        "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    ).encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{PACKAGE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
