"""The job, its identity, and the versioned envelope it travels in."""

from __future__ import annotations

import contextvars
import os
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec

from jobcore.errors import ArgsError, EnqueueError, PayloadError

ArgsT = TypeVar("ArgsT")

ENVELOPE_VERSION = 1
VERSION_BYTE = bytes([ENVELOPE_VERSION])
# Enqueue times a datetime can hold (years 1 to 9999): a stored envelope with
# another is corrupt, not a job that breaks whoever shows or runs it.
_EnqueuedMs = Annotated[int, msgspec.Meta(ge=-62_135_596_800_000, le=253_402_300_799_999)]

# Job ids: version-8 UUIDs (RFC 9562's custom layout) that are random first, as
# version 4 ones are (so an id's first 8 hex characters tell jobs apart), and
# carry the Unix time in ms they were made in their last 48 bits (the last 12
# hex digits), so find() can look for a pending job near that time in its
# stream. 74 random bits. The random bits come from one os.urandom() call per
# _ID_BATCH ids instead of one call (and a slow UUID(bytes=...)) per id:
# uuid4() was most of what building a Job cost.
_ID_BATCH = 256
_ID_HALVES = struct.Struct(">QQ")
_VERSION_8 = bytes(0x80 | (b & 0x0F) for b in range(256))  # byte 6: version 8
_VARIANT_RFC_4122 = bytes(0x80 | (b & 0x3F) for b in range(256))  # byte 8: variant 10xx
_RANDOM_OF_LOW = 0xFFFF << 48  # the low half keeps its variant and 14 random bits above the time
_ids: Iterator[tuple[Any, ...]] = iter(())  # (high, low) random halves of the ids not handed out yet
_new_object = object.__new__
_set_attr = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_time_ns = time.time_ns


def _id_batch() -> Iterator[tuple[Any, ...]]:
    raw = bytearray(os.urandom(16 * _ID_BATCH))
    raw[6::16] = raw[6::16].translate(_VERSION_8)
    raw[8::16] = raw[8::16].translate(_VARIANT_RFC_4122)
    return _ID_HALVES.iter_unpack(raw)


def new_job_id() -> uuid.UUID:
    """A version-8 UUID (the default ``Job.id``): random bits, then the time in
    ms it was made in the last 48 bits (``jobcore.ops.find.uuid_time_ms`` reads it).

    Safe across threads (each id comes from one C-level ``next``; two threads that
    both find the batch used up each draw a fresh one) and across ``os.fork``: the
    child drops the parent's unused ids, so no two processes hand out the same one.
    """
    global _ids
    halves = next(_ids, None)
    if halves is None:
        _ids = batch = _id_batch()
        halves = next(batch)
    low = (halves[1] & _RANDOM_OF_LOW) | (_time_ns() // 1_000_000)
    # What uuid.UUID(int=...) stores in its two slots, without its argument checks.
    u: uuid.UUID = _new_object(uuid.UUID)
    _set_attr(u, "int", (halves[0] << 64) | low)
    _set_attr(u, "is_safe", _SAFE_UNKNOWN)
    return u


def _forget_ids() -> None:
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_forget_ids)


class _Factory:
    """Stands for a ``default_factory`` default in ``Job.__init__``'s signature."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY: Any = _Factory()


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who a job acts for; carried into every log line of the job."""

    account_number: str = ""
    org_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True, init=False)
class Job(Generic[ArgsT]):
    """A unit of work: ``{id, type, account_id, identity, args}``.

    ``attempt`` and ``enqueued_at`` are read-only metadata filled in on delivery.
    """

    type: str
    args: ArgsT
    account_id: int = 0
    identity: Identity = field(default_factory=Identity)
    id: uuid.UUID = field(default_factory=new_job_id)
    attempt: int = 0
    enqueued_at: datetime | None = None

    def __init__(
        self,
        *,
        type: str,
        args: ArgsT,
        account_id: int = 0,
        identity: Identity = _FACTORY,
        id: uuid.UUID = _FACTORY,
        attempt: int = 0,
        enqueued_at: datetime | None = None,
    ) -> None:
        # The __init__ dataclass would generate, setting the frozen slots through
        # their descriptors: about half the cost of its object.__setattr__ calls.
        _set_type(self, type)
        _set_args(self, args)
        _set_account_id(self, account_id)
        _set_identity(self, Identity() if identity is _FACTORY else identity)
        _set_id(self, new_job_id() if id is _FACTORY else id)
        _set_attempt(self, attempt)
        _set_enqueued_at(self, enqueued_at)

    @property
    def reservation_id(self) -> Any:
        """The args' ``reservation_id`` when the args type has one, else None."""
        if isinstance(self.args, dict):
            return self.args.get("reservation_id")
        return getattr(self.args, "reservation_id", None)

    def log_fields(self, reservation_id: Any = None) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "account_number": self.identity.account_number,
            "org_id": self.identity.org_id,
            "job_id": str(self.id),
            "job_type": self.type,
            "reservation_id": self.reservation_id if reservation_id is None else reservation_id,
        }


def _slot_setter(name: str) -> Callable[[Job[Any], Any], None]:
    setter: Callable[[Job[Any], Any], None] = vars(Job)[name].__set__
    return setter


_set_type = _slot_setter("type")
_set_args = _slot_setter("args")
_set_account_id = _slot_setter("account_id")
_set_identity = _slot_setter("identity")
_set_id = _slot_setter("id")
_set_attempt = _slot_setter("attempt")
_set_enqueued_at = _slot_setter("enqueued_at")


class _Wire(msgspec.Struct, array_like=True):
    """Envelope body after the version byte. Positional: compact in Redis. The id
    is its 16 bytes (msgspec checks the length and builds the UUID in C)."""

    id: uuid.UUID
    type: str
    account_id: int
    account_number: str
    org_id: str
    enqueued_at_ms: _EnqueuedMs
    args: msgspec.Raw
    # Added after version 1 shipped: a reader from before it skips a trailing
    # element (msgspec's array_like), and this one reads an envelope without it.
    trace: msgspec.Raw = msgspec.Raw(b"")  # msgpack {name: value}: the producer span's context


# The trace context of the producer span sending envelopes now (jobcore/views/tracing.py
# sets it around a send): msgpack of its carrier, written as the envelope's 8th element.
sending_trace: contextvars.ContextVar[bytes] = contextvars.ContextVar("jobcore_sending_trace", default=b"")


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """A decoded envelope whose args are still raw msgpack bytes (a Struct: a
    worker decodes one per job)."""

    id: uuid.UUID
    type: str
    account_id: int
    identity: Identity
    enqueued_at_ms: int
    args: bytes
    trace: bytes = b""  # msgpack of the producer span's context carrier (empty: none)

    def job(self, args: Any, attempt: int) -> Job[Any]:
        return Job(
            type=self.type,
            args=args,
            account_id=self.account_id,
            identity=self.identity,
            id=self.id,
            attempt=attempt,
            enqueued_at=datetime.fromtimestamp(self.enqueued_at_ms / 1000, tz=UTC),
        )

    def args_json(self) -> Any:
        """Args as plain JSON-able data, for display; never typed, never executed.
        None when they cannot be decoded at all."""
        try:
            data = msgspec.msgpack.decode(self.args)
        except Exception:  # whatever the stored bytes are (too deep: RecursionError)
            return None
        try:
            return msgspec.to_builtins(data, str_keys=True, enc_hook=_shown)
        except Exception:  # keys json cannot hold (arrays, nil), or too deep to convert
            return _jsonable(data, 0)


def _shown(value: Any) -> Any:
    """A msgpack value JSON has no form for (an extension type), as text."""
    if isinstance(value, msgspec.msgpack.Ext):
        return f"<msgpack ext {value.code}: {bytes(value.data).hex()}>"
    return repr(value)


_JSON_DEPTH = 200


def _jsonable(value: Any, depth: int) -> Any:
    """``value`` with every map key made a string: slower than to_builtins, for
    the odd payload it refuses. Deeper than _JSON_DEPTH shows as "…"."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if depth >= _JSON_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    try:
        return msgspec.to_builtins(value, enc_hook=_shown)
    except Exception:
        return repr(value)


def _why(exc: BaseException) -> str:
    """Why a value did not encode or decode, in a few words (recursion and memory
    errors say nothing useful of themselves)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return "too large"
    return str(exc) or type(exc).__name__


_encoder = msgspec.msgpack.Encoder()
_envelope_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_wire_decoder = msgspec.msgpack.Decoder(_Wire)
encode_msgpack = _encoder.encode  # what encode_args and encode_job encode with


def encode_args(args: Any) -> bytes:
    try:
        return _encoder.encode(args)
    except (TypeError, msgspec.EncodeError, OverflowError, RecursionError) as exc:
        raise ArgsError(f"args of type {type(args).__name__} cannot be encoded: {_why(exc)}") from None


def encode_job(job: Job[Any], args_bytes: bytes | None = None, now_ms: int | None = None) -> bytes:
    """Encode a job into its envelope: one version byte, then a msgpack array."""
    return encode_envelope(
        job,
        int(time.time() * 1000) if now_ms is None else now_ms,
        encode_args(job.args) if args_bytes is None else args_bytes,
    )


def encode_envelope(job: Job[Any], now_ms: int, args_bytes: bytes, trace: bytes | None = None) -> bytes:
    """The envelope of a job whose args are encoded already; ``trace``: the
    sending span's context (None: read it here; a batch reads it once)."""
    if not isinstance(job.id, uuid.UUID):
        raise EnqueueError(f"job id must be a uuid.UUID, not {type(job.id).__name__}")
    ident = job.identity
    # The fields of _Wire in order: a tuple encodes to the same array without
    # building a _Wire; the id goes as its 16 bytes (the encoder's uuid_format).
    fields: tuple[Any, ...] = (
        job.id, job.type, job.account_id, ident.account_number, ident.org_id, now_ms, msgspec.Raw(args_bytes),
    )  # fmt: skip
    if trace is None:
        trace = sending_trace.get()
    if trace:
        fields += (msgspec.Raw(trace),)
    try:
        return VERSION_BYTE + _envelope_encoder.encode(fields)
    except OverflowError:
        raise EnqueueError(f"account_id {job.account_id} does not fit in 64 bits") from None


def decode_envelope(raw: bytes) -> Envelope:
    """Decode an envelope, or raise PayloadError with a reason fit for the dead set."""
    if not raw:
        raise PayloadError("empty payload")
    version = raw[0]
    if version != ENVELOPE_VERSION:
        raise PayloadError(f"unknown envelope version {version} (this jobcore reads version {ENVELOPE_VERSION})")
    try:
        wire = _wire_decoder.decode(raw[1:])
    except Exception as exc:  # any bytes at all: too deep (RecursionError), absurd sizes, wrong types
        raise PayloadError(f"corrupt envelope: {_why(exc)}") from None
    return Envelope(
        id=wire.id,
        type=wire.type,
        account_id=wire.account_id,
        identity=Identity(account_number=wire.account_number, org_id=wire.org_id),
        enqueued_at_ms=wire.enqueued_at_ms,
        args=bytes(wire.args),
        trace=bytes(wire.trace),
    )


_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}


def decode_args(raw_args: bytes, args_type: Any) -> Any:
    """Decode args into exactly ``args_type``; raise ArgsError when they do not fit."""
    decoder = _decoders.get(args_type)
    if decoder is None:
        decoder = _decoders[args_type] = msgspec.msgpack.Decoder(args_type)
    try:
        return decoder.decode(raw_args)
    except msgspec.ValidationError as exc:
        raise ArgsError(f"args do not fit {type_name(args_type)}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ArgsError(f"args are not valid msgpack: {exc}") from None
    except (RecursionError, MemoryError) as exc:  # stored bytes no type could take
        raise ArgsError(f"args are not decodable: {_why(exc)}") from None


# What a type registered for a job type does with args fields it does not know:
# "dead" refuses them (the producer, the published schema, the worker, which
# dead-letters the job); "ignore" drops them, as msgspec would.
UnknownFields = Literal["dead", "ignore"]

_Known = tuple[tuple[str, ...], frozenset[str], Callable[[bytes], Any]]
_known_fields: dict[Any, _Known | None] = {}
_keys_decoder = msgspec.msgpack.Decoder(dict[str, msgspec.Raw])


def _known(args_type: Any) -> _Known | None:
    """(field names in order, the same as a set, a decoder that raises on any
    other name) for ``args_type``; None when it takes any map."""
    try:
        return _known_fields[args_type]
    except KeyError:
        pass
    except TypeError:  # an unhashable "type" (an Annotated alias with a list inside)
        return None
    try:
        info = msgspec.inspect.type_info(args_type)
    except Exception:  # not a type msgspec knows: decoding says what is wrong
        info = None
    names: tuple[str, ...] | None = None
    if isinstance(info, msgspec.inspect.StructType) and not info.array_like:
        tag = (info.tag_field,) if info.tag_field else ()
        names = tag + tuple(f.encode_name for f in info.fields)
    elif isinstance(info, (msgspec.inspect.DataclassType, msgspec.inspect.TypedDictType)):
        names = tuple(f.encode_name for f in info.fields)
    known = None
    if names is not None:
        # A twin that takes the same names and no other, each value left undecoded:
        # about as cheap as decoding the args themselves.
        twin = msgspec.defstruct(
            "KnownFields",
            [(f"f{i}", msgspec.Raw, msgspec.Raw()) for i in range(len(names))],
            rename={f"f{i}": n for i, n in enumerate(names)},
            forbid_unknown_fields=True,
            gc=False,
        )
        known = (names, frozenset(names), msgspec.msgpack.Decoder(twin).decode)
    _known_fields[args_type] = known
    return known


def field_names(args_type: Any, unknown: UnknownFields = "dead") -> tuple[str, ...] | None:
    """The names args of ``args_type`` may carry, in the type's order (as encoded:
    a renamed Struct's encoded names); None when any field goes: a type that takes
    any map (a dict, an array-like Struct) or, with ``unknown="ignore"``, any type."""
    known = _known(args_type) if unknown == "dead" else None
    return None if known is None else known[0]


def unknown_fields(raw_args: bytes, args_type: Any) -> list[str]:
    """Fields the encoded args map carries that ``args_type`` does not know (a typo,
    or a newer producer's), which decoding would drop in silence: every key is read
    by name, whatever the map's size. [] for what is not a map of string keys
    (decoding says what is wrong)."""
    known = _known(args_type)
    if known is None:
        return []
    try:
        known[2](raw_args)
        return []
    except msgspec.ValidationError:  # an unknown name (or not a map): read every key
        pass
    except (msgspec.DecodeError, RecursionError, MemoryError):
        return []
    try:
        keys = _keys_decoder.decode(raw_args)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, MemoryError):
        return []
    names = known[1]
    return sorted(k for k in keys if k not in names)


def convert_args(value: Any, args_type: Any) -> Any:
    """Check (and convert) args given as an instance or plain data against ``args_type``."""
    if args_type is Any:
        return value
    try:
        if isinstance(args_type, type) and isinstance(value, args_type):
            # Round-trip so declared constraints (Meta ge=..., etc.) are checked too.
            return decode_args(encode_args(value), args_type)
        return msgspec.convert(value, args_type, strict=False)
    except msgspec.ValidationError as exc:
        raise ArgsError(f"args do not fit {type_name(args_type)}: {exc}") from None


_StructMeta = type(msgspec.Struct)  # cheaper to test a type against than Struct itself


def encode_valid_args(value: Any, args_type: Any) -> bytes:
    """``encode_args(convert_args(value, args_type))``: check args against their
    declared type and encode them. An instance of exactly the declared Struct type
    is encoded once and checked by decoding those same bytes (not re-encoded from
    the decoded copy: a worker decodes the same args either way, though the bytes
    can differ where decoding normalises, e.g. an int given for a float field)."""
    if value.__class__ is args_type and isinstance(args_type, _StructMeta):
        raw = encode_args(value)
        decode_args(raw, args_type)  # declared constraints (Meta ge=..., etc.)
        return raw
    return encode_args(convert_args(value, args_type))


def struct_args_decode(args_type: Any) -> Callable[[bytes], Any] | None:
    """How encode_valid_args checks an instance of exactly ``args_type`` when that is
    a msgspec Struct type: this decode, run on the instance's own encoding (which
    raises ValidationError when it does not fit). None for any other args type."""
    if not isinstance(args_type, _StructMeta):
        return None
    decoder = _decoders.get(args_type)
    if decoder is None:
        decoder = _decoders[args_type] = msgspec.msgpack.Decoder(args_type)
    return decoder.decode


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def args_schema(args_type: Any) -> dict[str, Any]:
    """The JSON Schema msgspec derives from an args type."""
    return msgspec.json.schema(args_type)
