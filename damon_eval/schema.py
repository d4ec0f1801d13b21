"""JSON Schema validation with one-line errors and defaults filled in.

The one validator path of the project: campaigns, configurations, guest image
specs, ``result.json`` and ground truth all go through :func:`validate` (or,
to report every problem at once, :func:`schema_errors` and
:func:`error_location`).  Schemas live in
``damon_eval/data/schemas/<name>.schema.yaml`` or ``.json`` (draft 2020-12;
YAML can carry comments).  Every property has a ``description`` and, where
optional, a ``default``.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from damon_eval.errors import ConfigError, DamonEvalError
from damon_eval.paths import DATA_DIR

SCHEMA_DIR = DATA_DIR / "schemas"


@functools.cache
def load_schema(name: str) -> dict:
    path = SCHEMA_DIR / f"{name}.schema.yaml"
    if not path.is_file():
        path = SCHEMA_DIR / f"{name}.schema.json"
    return yaml.safe_load(path.read_text())


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def schema_errors(instance: Any, schema_name: str) -> list[jsonschema.ValidationError]:
    """Every schema error of ``instance``, in document order."""
    errors = _validator(schema_name).iter_errors(instance)
    return sorted(errors, key=lambda e: [str(part) for part in e.absolute_path])


def error_location(error: jsonschema.ValidationError) -> str:
    """Where an error is, as ``key.sub[2].key`` (``(top level)`` for the document)."""
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _description(path: Any, root: dict) -> str | None:
    """The ``description`` of the deepest described property on ``path``."""
    node: Any = root
    found = None
    for part in path:
        while isinstance(node, dict) and "$ref" in node:
            node = _resolve(node["$ref"], root)
        if not isinstance(node, dict):
            break
        node = node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
        if not isinstance(node, dict):
            break
        found = node.get("description", found)
    return found


def _resolve(ref: str, root: dict) -> Any:
    target: Any = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return target


def _message(error: jsonschema.ValidationError, root: dict | None = None) -> str:
    """What is wrong and what would be valid; with ``root`` (the schema), the
    meaning of the key (its ``description``) where the error does not list the
    valid values."""
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"{error.instance!r} is not valid; valid values: {allowed}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{error.message}; valid keys: {allowed}"
    alternatives = error.validator_value if error.validator in ("anyOf", "oneOf") else []
    if alternatives and all("description" in a for a in alternatives):
        valid = " or ".join(a["description"] for a in alternatives)
        return f"{error.instance!r} is not valid; valid: {valid}"
    message = error.message
    description = _description(error.absolute_path, root) if root is not None else None
    return f"{message} ({description})" if description else message


def describe_errors(errors: list[jsonschema.ValidationError], schema: dict) -> str:
    """Every error, ``location: message`` each, joined by ``; ``.  An error that no
    alternative (``oneOf``/``anyOf``) fits comes after the most relevant reason
    of the alternative closest to fitting."""
    shown: list[jsonschema.ValidationError] = []
    for error in errors:
        closest = jsonschema.exceptions.best_match([error]) if error.context else None
        if closest is not None and closest is not error:
            shown.append(closest)
        shown.append(error)
    return "; ".join(f"{error_location(e)}: {_message(e, schema)}" for e in shown)


def _fill_defaults(instance: Any, schema: dict, root: dict) -> None:
    """Fill in ``default`` values of object properties, recursively."""
    if "$ref" in schema:
        _fill_defaults(instance, _resolve(schema["$ref"], root), root)
        return
    for keyword in ("oneOf", "anyOf"):
        for option in schema.get(keyword, []):
            # Fill from the alternative the (already valid) instance matches.
            resolver = jsonschema.Draft202012Validator({**option, "$defs": root.get("$defs", {})})
            if resolver.is_valid(instance):
                _fill_defaults(instance, option, root)
                break
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                _fill_defaults(instance[key], sub, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"], root)


def validate(
    instance: Any,
    schema_name: str,
    source: str | Path,
    *,
    error: type[DamonEvalError] = ConfigError,
    fill_defaults: bool = True,
) -> Any:
    """Validate ``instance``; return a copy with defaults filled in (or ``instance``).

    Raises ``error`` (:class:`ConfigError` unless told) naming ``source`` and,
    for every problem at once (in document order), its location, the bad value
    and what would have been valid.
    """
    errors = schema_errors(instance, schema_name)
    schema = load_schema(schema_name)
    if errors:
        raise error(f"{source}: {describe_errors(errors, schema)}")
    if not fill_defaults:
        return instance
    filled = copy.deepcopy(instance)
    _fill_defaults(filled, schema, schema)
    return filled


def load_yaml(path: Path) -> Any:
    """Read a YAML file with errors that name it."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from exc
