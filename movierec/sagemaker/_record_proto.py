"""What the RecordIO-protobuf writers and readers share: frame constants, the error, the messages.

The ``record.proto`` message classes are built on first use from a
`google.protobuf.descriptor_pb2.FileDescriptorProto` in a private descriptor pool, so that
importing this module (or ``movierec.sagemaker.recordio``) does not import ``protobuf``.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from movierec.exceptions import DataValidationError

__all__ = [
    "FLOAT32",
    "FLOAT64",
    "HEADER",
    "INT32",
    "LENGTH_MASK",
    "MAGIC",
    "MAGIC_BYTES",
    "TENSOR_KINDS",
    "FileLike",
    "Messages",
    "RecordIOError",
    "messages",
    "open_binary",
]

#: RecordIO magic number that starts every frame.
MAGIC = 0xCED7230A

FileLike = str | os.PathLike[str] | IO[bytes]

HEADER = struct.Struct("<II")
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1

# The numeric fields of the ``Value`` oneof.
FLOAT32, FLOAT64, INT32 = "float32_tensor", "float64_tensor", "int32_tensor"
TENSOR_KINDS = (FLOAT32, FLOAT64, INT32)


class RecordIOError(DataValidationError):
    """A RecordIO-protobuf file or the data to write into one is malformed.

    Reader errors name the record number (0-based) and the byte offset of its frame.
    """

    __module__ = "movierec.sagemaker.recordio"  # where users import it from


@contextmanager
def open_binary(f: FileLike, mode: str) -> Iterator[IO[bytes]]:
    """Yield a binary file object: open a path (and close it), or pass a file object through."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, mode) as fh:
            yield fh
    else:
        yield f


@dataclass(frozen=True)
class Messages:
    """The generated ``Record`` class of SageMaker's ``record.proto`` (the other messages are its fields)."""

    Record: Any
    DecodeError: type[Exception]


@functools.cache
def messages() -> Messages:
    """Build the ``aialgs.data`` message classes (cached; imports ``protobuf`` on first call).

    Returns
    -------
    Messages
        The ``Record`` class and protobuf's ``DecodeError``.

    Raises
    ------
    ImportError
        If the ``protobuf`` package is not installed.
    """
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from google.protobuf.message import DecodeError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "movierec.sagemaker.recordio needs the 'protobuf' package (pip install 'protobuf>=4.21')"
        ) from exc

    field = descriptor_pb2.FieldDescriptorProto
    packed = descriptor_pb2.FieldOptions(packed=True)
    pkg = ".aialgs.data."
    proto = descriptor_pb2.FileDescriptorProto(
        name="movierec/sagemaker/record.proto", package="aialgs.data", syntax="proto2"
    )

    for name, value_type in (
        ("Float32Tensor", field.TYPE_FLOAT),
        ("Float64Tensor", field.TYPE_DOUBLE),
        ("Int32Tensor", field.TYPE_INT32),
    ):
        msg = proto.message_type.add(name=name)
        msg.field.add(name="values", number=1, label=field.LABEL_REPEATED, type=value_type, options=packed)
        msg.field.add(
            name="keys", number=2, label=field.LABEL_REPEATED, type=field.TYPE_UINT64, options=packed
        )
        msg.field.add(
            name="shape", number=3, label=field.LABEL_REPEATED, type=field.TYPE_UINT64, options=packed
        )

    msg = proto.message_type.add(name="Bytes")
    msg.field.add(name="value", number=1, label=field.LABEL_REPEATED, type=field.TYPE_BYTES)
    msg.field.add(name="content_type", number=2, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)

    msg = proto.message_type.add(name="Value")
    msg.oneof_decl.add(name="value")
    for name, number, type_name in (
        (FLOAT32, 2, "Float32Tensor"),
        (FLOAT64, 3, "Float64Tensor"),
        (INT32, 7, "Int32Tensor"),
        ("bytes", 9, "Bytes"),
    ):
        msg.field.add(
            name=name,
            number=number,
            label=field.LABEL_OPTIONAL,
            type=field.TYPE_MESSAGE,
            type_name=pkg + type_name,
            oneof_index=0,
        )

    msg = proto.message_type.add(name="Record")
    for number, (name, entry) in enumerate((("features", "FeaturesEntry"), ("label", "LabelEntry")), 1):
        nested = msg.nested_type.add(name=entry, options=descriptor_pb2.MessageOptions(map_entry=True))
        nested.field.add(name="key", number=1, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)
        nested.field.add(
            name="value",
            number=2,
            label=field.LABEL_OPTIONAL,
            type=field.TYPE_MESSAGE,
            type_name=pkg + "Value",
        )
        msg.field.add(
            name=name,
            number=number,
            label=field.LABEL_REPEATED,
            type=field.TYPE_MESSAGE,
            type_name=f"{pkg}Record.{entry}",
        )
    for number, name in ((3, "uid"), (4, "metadata"), (5, "configuration")):
        msg.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)

    pool = descriptor_pool.DescriptorPool()  # private: no clash with sagemaker's own record_pb2
    pool.AddSerializedFile(proto.SerializeToString())

    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # pragma: no cover - protobuf < 4.21
        get_class = message_factory.MessageFactory(pool).GetPrototype

    return Messages(Record=get_class(pool.FindMessageTypeByName("aialgs.data.Record")), DecodeError=DecodeError)
