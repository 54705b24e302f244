"""Turn plain TOML tables into frozen dataclasses, with errors that name the key.

Each config class is a frozen, keyword-only dataclass. A field may carry
metadata: `choices` (allowed values), `min`/`max` (numeric bounds), `pattern`
(a regular expression a string must match, explained by `pattern_doc`) and
`doc`.
Nested tables map to nested dataclasses; `[[sources]]` arrays map through a
`type` discriminator to one of several dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Mapping

from ..errors import ConfigError


def option(default: Any, doc: str = "", **rules: Any) -> Any:
    """Declare a config field with a default, a description and its rules."""
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple for sequence defaults")
    return dataclasses.field(default=default, metadata={"doc": doc, **rules})


def build(cls: type, data: Mapping[str, Any], path: str = "") -> Any:
    """Build `cls` from `data`, raising ConfigError naming the bad key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = _join(path, unknown[0])
        allowed = ", ".join(sorted(fields))
        raise ConfigError(f"{where}: unknown key; allowed keys here: {allowed}")
    values = {}
    for name, field in fields.items():
        if name in data:
            key = _join(path, name)
            value = _convert(hints[name], data[name], key)
            _check_rules(field.metadata, value, key)
            values[name] = value
        elif field.default is dataclasses.MISSING and (
            field.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(f"{_join(path, name)}: required key is missing")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from exc


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(typing.get_args(hint), value, key)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if origin is tuple:
        return _convert_tuple(typing.get_args(hint), value, key)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if hint in (int, str, bool):
        if type(value) is not hint:
            raise ConfigError(f"{key}: expected {_noun(hint)}, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")


def _convert_union(options: tuple, value: Any, key: str) -> Any:
    if value is None and type(None) in options:
        return None
    classes = [o for o in options if dataclasses.is_dataclass(o)]
    if classes:
        return _convert_tagged(classes, value, key)
    errors = []
    for hint in options:
        if hint is type(None):
            continue
        try:
            return _convert(hint, value, key)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")


def _convert_tagged(classes: list, value: Any, key: str) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a table, got {value!r}")
    by_tag = {c.TYPE: c for c in classes}
    tag = value.get("type")
    if tag not in by_tag:
        allowed = ", ".join(sorted(by_tag))
        raise ConfigError(f"{key}.type: got {tag!r}, expected one of: {allowed}")
    body = {k: v for k, v in value.items() if k != "type"}
    return build(by_tag[tag], body, key)


def _convert_tuple(args: tuple, value: Any, key: str) -> tuple:
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list, got {value!r}")
    item_hint = args[0]
    return tuple(
        _convert(item_hint, item, f"{key}[{i}]") for i, item in enumerate(value)
    )


def _noun(hint: type) -> str:
    return {int: "an integer", str: "a string", bool: "true or false"}[hint]


def _check_rules(rules: Mapping[str, Any], value: Any, key: str) -> None:
    pattern = rules.get("pattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ConfigError(
            f"{key}: got {value!r}, expected {rules.get('pattern_doc', pattern)}"
        )
    choices = rules.get("choices")
    if choices is not None and value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{key}: got {value!r}, expected one of: {allowed}")
    low, high = rules.get("min"), rules.get("max")
    if low is not None and value is not None and value < low:
        raise ConfigError(f"{key}: got {value!r}, must be at least {low}")
    if high is not None and value is not None and value > high:
        raise ConfigError(f"{key}: got {value!r}, must be at most {high}")
