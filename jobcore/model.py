"""The job, its identity, and the versioned envelope it travels in."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec

from .errors import ArgsError, PayloadError

ArgsT = TypeVar("ArgsT")

ENVELOPE_VERSION = 1
_VERSION_BYTE = bytes([ENVELOPE_VERSION])


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who a job acts for; carried into every log line of the job."""

    account_number: str = ""
    org_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Job(Generic[ArgsT]):
    """A unit of work: ``{id, type, account_id, identity, args}``.

    ``attempt`` and ``enqueued_at`` are read-only metadata filled in on delivery.
    """

    type: str
    args: ArgsT
    account_id: int = 0
    identity: Identity = field(default_factory=Identity)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    attempt: int = 0
    enqueued_at: datetime | None = None

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


class _Wire(msgspec.Struct, array_like=True):
    """Envelope body after the version byte. Positional: compact in Redis."""

    id: bytes
    type: str
    account_id: int
    account_number: str
    org_id: str
    enqueued_at_ms: int
    args: msgspec.Raw


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded envelope whose args are still raw msgpack bytes."""

    id: uuid.UUID
    type: str
    account_id: int
    identity: Identity
    enqueued_at_ms: int
    args: bytes

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
        """Args as plain JSON-able data, for display; never typed, never executed."""
        try:
            return msgspec.msgpack.decode(self.args)
        except msgspec.DecodeError:
            return None


_encoder = msgspec.msgpack.Encoder()
_wire_decoder = msgspec.msgpack.Decoder(_Wire)


def encode_args(args: Any) -> bytes:
    try:
        return _encoder.encode(args)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ArgsError(f"args of type {type(args).__name__} cannot be encoded: {exc}") from None


def encode_job(job: Job[Any], args_bytes: bytes | None = None, now_ms: int | None = None) -> bytes:
    """Encode a job into its envelope: one version byte, then a msgpack array."""
    wire = _Wire(
        id=job.id.bytes,
        type=job.type,
        account_id=job.account_id,
        account_number=job.identity.account_number,
        org_id=job.identity.org_id,
        enqueued_at_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        args=msgspec.Raw(encode_args(job.args) if args_bytes is None else args_bytes),
    )
    return _VERSION_BYTE + _encoder.encode(wire)


def decode_envelope(raw: bytes) -> Envelope:
    """Decode an envelope, or raise PayloadError with a reason fit for the dead set."""
    if not raw:
        raise PayloadError("empty payload")
    version = raw[0]
    if version != ENVELOPE_VERSION:
        raise PayloadError(f"unknown envelope version {version} (this jobcore reads version {ENVELOPE_VERSION})")
    try:
        wire = _wire_decoder.decode(raw[1:])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(f"corrupt envelope: {exc}") from None
    if len(wire.id) != 16:
        raise PayloadError(f"corrupt envelope: job id has {len(wire.id)} bytes, not 16")
    return Envelope(
        id=uuid.UUID(bytes=wire.id),
        type=wire.type,
        account_id=wire.account_id,
        identity=Identity(account_number=wire.account_number, org_id=wire.org_id),
        enqueued_at_ms=wire.enqueued_at_ms,
        args=bytes(wire.args),
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
        raise ArgsError(f"args do not fit {_type_name(args_type)}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ArgsError(f"args are not valid msgpack: {exc}") from None


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
        raise ArgsError(f"args do not fit {_type_name(args_type)}: {exc}") from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def args_schema(args_type: Any) -> dict[str, Any]:
    """The JSON Schema msgspec derives from an args type."""
    return msgspec.json.schema(args_type)
