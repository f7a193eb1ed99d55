from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class MethodAccess(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_ACCESS_UNSPECIFIED: _ClassVar[MethodAccess]
    METHOD_ACCESS_INTERNAL: _ClassVar[MethodAccess]
METHOD_ACCESS_UNSPECIFIED: MethodAccess
METHOD_ACCESS_INTERNAL: MethodAccess
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
