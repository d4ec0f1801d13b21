"""JSON Schema validation with one-line errors and defaults filled in.

Schemas live in ``damon_eval/data/schemas/<name>.schema.yaml`` (draft 2020-12,
written in YAML so they can carry comments).  Every property has a
``description`` and, where optional, a ``default``.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from damon_eval.errors import ConfigError
from damon_eval.paths import DATA_DIR

SCHEMA_DIR = DATA_DIR / "schemas"


@functools.cache
def load_schema(name: str) -> dict:
    path = SCHEMA_DIR / f"{name}.schema.yaml"
    if not path.is_file():
        path = SCHEMA_DIR / f"{name}.schema.json"
    return yaml.safe_load(path.read_text())


def _location(error: jsonschema.ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
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
    return error.message


def _fill_defaults(instance: Any, schema: dict, root: dict) -> None:
    """Fill in ``default`` values of object properties, recursively."""
    if "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        _fill_defaults(instance, target, root)
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


def validate(instance: Any, schema_name: str, source: str | Path) -> Any:
    """Validate ``instance``; return a copy with defaults filled in.

    Raises :class:`ConfigError` naming ``source``, the location of the first
    error and what would have been valid.
    """
    schema = load_schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        raise ConfigError(f"{source}: {_location(best)}: {_message(best)}")
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
