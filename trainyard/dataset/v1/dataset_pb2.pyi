import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from trainyard.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_FORMAT_UNSPECIFIED: _ClassVar[DatasetFormat]
    DATASET_FORMAT_IMAGE_FOLDER: _ClassVar[DatasetFormat]
    DATASET_FORMAT_CSV: _ClassVar[DatasetFormat]
    DATASET_FORMAT_COCO: _ClassVar[DatasetFormat]
    DATASET_FORMAT_VOC: _ClassVar[DatasetFormat]
    DATASET_FORMAT_YOLO: _ClassVar[DatasetFormat]
    DATASET_FORMAT_MASK_FOLDER: _ClassVar[DatasetFormat]

class ArchiveType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARCHIVE_TYPE_UNSPECIFIED: _ClassVar[ArchiveType]
    ARCHIVE_TYPE_ZIP: _ClassVar[ArchiveType]
    ARCHIVE_TYPE_TAR: _ClassVar[ArchiveType]
    ARCHIVE_TYPE_TAR_GZ: _ClassVar[ArchiveType]
DATASET_FORMAT_UNSPECIFIED: DatasetFormat
DATASET_FORMAT_IMAGE_FOLDER: DatasetFormat
DATASET_FORMAT_CSV: DatasetFormat
DATASET_FORMAT_COCO: DatasetFormat
DATASET_FORMAT_VOC: DatasetFormat
DATASET_FORMAT_YOLO: DatasetFormat
DATASET_FORMAT_MASK_FOLDER: DatasetFormat
ARCHIVE_TYPE_UNSPECIFIED: ArchiveType
ARCHIVE_TYPE_ZIP: ArchiveType
ARCHIVE_TYPE_TAR: ArchiveType
ARCHIVE_TYPE_TAR_GZ: ArchiveType

class ClassInfo(_message.Message):
    __slots__ = ("index", "name", "count")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    count: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class SplitCounts(_message.Message):
    __slots__ = ("train", "val", "test")
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    VAL_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    train: int
    val: int
    test: int
    def __init__(self, train: _Optional[int] = ..., val: _Optional[int] = ..., test: _Optional[int] = ...) -> None: ...

class DatasetVersion(_message.Message):
    __slots__ = ("id", "dataset_id", "number", "manifest", "case_count", "split_counts", "classes", "annotation_types", "source_format", "import_warnings", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    CASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_TYPES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    IMPORT_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset_id: str
    number: int
    manifest: _common_pb2.ObjectRef
    case_count: int
    split_counts: SplitCounts
    classes: _containers.RepeatedCompositeFieldContainer[ClassInfo]
    annotation_types: _containers.RepeatedScalarFieldContainer[_common_pb2.AnnotationType]
    source_format: DatasetFormat
    import_warnings: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., number: _Optional[int] = ..., manifest: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., case_count: _Optional[int] = ..., split_counts: _Optional[_Union[SplitCounts, _Mapping]] = ..., classes: _Optional[_Iterable[_Union[ClassInfo, _Mapping]]] = ..., annotation_types: _Optional[_Iterable[_Union[_common_pb2.AnnotationType, str]]] = ..., source_format: _Optional[_Union[DatasetFormat, str]] = ..., import_warnings: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("id", "project", "name", "description", "task_types", "latest_version", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    project: str
    name: str
    description: str
    task_types: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskType]
    latest_version: DatasetVersion
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., task_types: _Optional[_Iterable[_Union[_common_pb2.TaskType, str]]] = ..., latest_version: _Optional[_Union[DatasetVersion, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Annotation(_message.Message):
    __slots__ = ("type", "class_index", "class_name", "box")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.AnnotationType
    class_index: int
    class_name: str
    box: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, type: _Optional[_Union[_common_pb2.AnnotationType, str]] = ..., class_index: _Optional[int] = ..., class_name: _Optional[str] = ..., box: _Optional[_Iterable[float]] = ...) -> None: ...

class Case(_message.Message):
    __slots__ = ("id", "source_path", "image_sha256", "width", "height", "split", "annotations", "preview_jpeg")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_JPEG_FIELD_NUMBER: _ClassVar[int]
    id: str
    source_path: str
    image_sha256: str
    width: int
    height: int
    split: _common_pb2.Split
    annotations: _containers.RepeatedCompositeFieldContainer[Annotation]
    preview_jpeg: bytes
    def __init__(self, id: _Optional[str] = ..., source_path: _Optional[str] = ..., image_sha256: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ..., annotations: _Optional[_Iterable[_Union[Annotation, _Mapping]]] = ..., preview_jpeg: _Optional[bytes] = ...) -> None: ...
