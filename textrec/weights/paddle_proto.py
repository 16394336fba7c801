"""The part of Paddle's `framework.proto` (package `paddle.framework.proto`, proto2) that textrec
reads, as protobuf message classes built at import: no protoc, no generated code from Paddle.

Field numbers and wire types are Paddle's; only the fields read here are declared (protobuf keeps
the others as unknown fields). Every field is `optional` (Paddle's `required` ones are checked by
the readers, with their own messages) and Paddle's enums are declared `int32`, their wire form,
so that a code newer than this schema (bfloat16 = 22, ...) reads as its number. Names are
declared `bytes` (same wire form as `string`) and decoded by the readers: protobuf runtimes differ
on a proto2 string that is not UTF-8, the readers call it a corrupt file.

  ProgramDesc   blocks = 1 (BlockDesc)
  BlockDesc     vars = 3 (VarDesc), ops = 4 (OpDesc)
  VarDesc       name = 1, type = 2 (VarType), persistable = 3
  VarType       type = 1 (VarType.Type), lod_tensor = 3 (LoDTensorDesc)
  LoDTensorDesc tensor = 1 (TensorDesc)
  TensorDesc    data_type = 1 (VarType.Type), dims = 2 (int64, -1 = unknown; unpacked)
  OpDesc        inputs = 1 (OpDescVar)
  OpDescVar     arguments = 2 (Paddle's OpDesc.Var: the variable names of one input)
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "textrec.paddle"
# message -> [(field name, number, type, label, message type name or "")]
_SCHEMA: dict[str, list[tuple[str, int, int, int, str]]] = {
    "ProgramDesc": [("blocks", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "BlockDesc")],
    "BlockDesc": [("vars", 3, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "VarDesc"),
                  ("ops", 4, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "OpDesc")],
    "VarDesc": [("name", 1, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, ""),
                ("type", 2, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "VarType"),
                ("persistable", 3, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "")],
    "VarType": [("type", 1, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
                ("lod_tensor", 3, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "LoDTensorDesc")],
    "LoDTensorDesc": [("tensor", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "TensorDesc")],
    "TensorDesc": [("data_type", 1, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""),
                   ("dims", 2, _F.TYPE_INT64, _F.LABEL_REPEATED, "")],
    "OpDesc": [("inputs", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "OpDescVar")],
    "OpDescVar": [("arguments", 2, _F.TYPE_BYTES, _F.LABEL_REPEATED, "")],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
  f = descriptor_pb2.FileDescriptorProto(name="textrec/paddle_framework.proto",
                                         package=_PACKAGE, syntax="proto2")
  for name, fields in _SCHEMA.items():
    msg = f.message_type.add(name=name)
    for field, number, kind, label, ref in fields:
      msg.field.add(name=field, number=number, type=kind, label=label,
                    type_name=f".{_PACKAGE}.{ref}" if ref else None)
  return f


def _classes() -> dict[str, type]:
  pool = descriptor_pool.DescriptorPool()  # ours alone: no clash with other .proto files
  fd = pool.AddSerializedFile(_file().SerializeToString())
  return {name: message_factory.GetMessageClass(fd.message_types_by_name[name])
          for name in _SCHEMA}


_CLASSES = _classes()
ProgramDesc = _CLASSES["ProgramDesc"]
TensorDesc = _CLASSES["TensorDesc"]
