"""A job type's args schema, checked and described; and the one rule for args
fields a type does not know, which the producer, ``jobcore enqueue``, the
console's form and the worker all apply (each from what it has: the args type,
or the schema its workers publish)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jobcore.errors import ArgsError, UnknownArgsFields

_NAMES_SHOWN = 10  # field names a message lists before "and N more"
_NAME_MAX = 60  # characters of one field name shown


def _name(name: object) -> str:
    """A field name as messages show it: in backticks, as msgspec names fields (so
    the failure groups keep it as part of the cause); odd names as a quoted repr."""
    if isinstance(name, str) and name.isprintable() and "`" not in name and len(name) <= _NAME_MAX:
        return f"`{name}`"
    text = repr(name)
    return text if len(text) <= _NAME_MAX else text[: _NAME_MAX - 1] + "…"


def _names(names: Sequence[object]) -> str:
    shown = ", ".join(_name(n) for n in names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def unknown_fields_error(
    job_type: str, owner: str, fields: Sequence[object], known: Sequence[str], hint: str = ""
) -> UnknownArgsFields:
    """The error (and its one-line message) for args of ``job_type`` carrying
    ``fields`` that ``owner`` (a type name, "this worker's V1") does not know."""
    # Sorted: a schema read back from Redis may list its fields in another order.
    its = f"its fields: {_names(sorted(known))}" if known else "it has no fields"
    message = f"args for {job_type!r} carry field(s) {_names(fields)} that {owner} does not know ({its}{hint})"
    return UnknownArgsFields(message, fields=[str(f) for f in fields], known=known)


def check_fields(job_type: str, owner: str, keys: Iterable[object], known: Sequence[str] | None) -> None:
    """Raise UnknownArgsFields when ``keys`` (an args map's) name a field not in
    ``known``; None means any field goes (the type takes any map, or ignores
    unknown fields)."""
    if known is None:
        return
    allowed = set(known)
    extra = [k for k in keys if k not in allowed]
    if extra:
        raise unknown_fields_error(job_type, owner, sorted(extra, key=str), known)


def _target(schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema itself, following one ``$ref`` into ``$defs`` (msgspec's layout)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found = schema.get("$defs", {}).get(ref.rsplit("/", 1)[1])
        if isinstance(found, dict):
            return found
    return schema


def forbid_unknown(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``additionalProperties: false`` on its object: what a worker
    publishes for a type whose unknown fields it dead-letters."""
    target = _target(schema)
    strict = {**target, "additionalProperties": False}
    if target is schema:
        return strict
    return {**schema, "$defs": {**schema["$defs"], schema["$ref"].rsplit("/", 1)[1]: strict}}


def schema_fields(schema: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(type name, field names in order) when ``schema`` forbids fields it does not
    list; None when any field goes."""
    target = _target(schema)
    props = target.get("properties", {})
    if target.get("additionalProperties") is not False or not isinstance(props, dict):
        return None
    title = target.get("title")
    return (title if isinstance(title, str) and title else "its schema"), [str(p) for p in props]


def check_args(job_type: str, args: Any, schema: dict[str, Any]) -> None:
    """Raise ArgsError naming the first problem when ``args`` do not fit ``schema``
    (UnknownArgsFields, naming every unknown field, before anything else)."""
    if not schema:
        return
    fields = schema_fields(schema)
    if fields is not None and isinstance(args, dict):
        check_fields(job_type, fields[0], args, fields[1])
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
    target = _target(schema)
    props = target.get("properties", {})
    required = set(target.get("required", []))
    out = []
    for name, spec in props.items():
        kind = spec.get("type") or ("|".join(s.get("type", "?") for s in spec.get("anyOf", [])) or "any")
        out.append((name, str(kind), name in required, spec.get("default")))
    return out
