"""Checking plain JSON args against a type's published JSON Schema."""

from __future__ import annotations

from typing import Any

from jobcore.errors import ArgsError


def check_args(job_type: str, args: Any, schema: dict[str, Any]) -> None:
    """Raise ArgsError naming the first problem when ``args`` do not fit ``schema``."""
    if not schema:
        return
    import jsonschema  # here, not at the top: it costs a worker ~0.2 s of start-up

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path)
    at = f" at {where}" if where else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ArgsError(f"args for {job_type!r} do not fit its schema{at}: {first.message}{more}")


def describe(schema: dict[str, Any]) -> list[tuple[str, str, bool, Any]]:
    """(field, type, required, default) for each top-level property, following one $ref."""
    target = schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = schema.get("$defs", {}).get(ref.rsplit("/", 1)[1], schema)
    props = target.get("properties", {})
    required = set(target.get("required", []))
    out = []
    for name, spec in props.items():
        kind = spec.get("type") or ("|".join(s.get("type", "?") for s in spec.get("anyOf", [])) or "any")
        out.append((name, str(kind), name in required, spec.get("default")))
    return out
