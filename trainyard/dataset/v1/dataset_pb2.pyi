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

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_COCO: _ClassVar[ExportFormat]
    EXPORT_FORMAT_IMAGE_FOLDER: _ClassVar[ExportFormat]
    EXPORT_FORMAT_MASK_PNG: _ClassVar[ExportFormat]

class ImportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_STATE_UNSPECIFIED: _ClassVar[ImportState]
    IMPORT_STATE_PENDING: _ClassVar[ImportState]
    IMPORT_STATE_RUNNING: _ClassVar[ImportState]
    IMPORT_STATE_SUCCEEDED: _ClassVar[ImportState]
    IMPORT_STATE_FAILED: _ClassVar[ImportState]
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
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_COCO: ExportFormat
EXPORT_FORMAT_IMAGE_FOLDER: ExportFormat
EXPORT_FORMAT_MASK_PNG: ExportFormat
IMPORT_STATE_UNSPECIFIED: ImportState
IMPORT_STATE_PENDING: ImportState
IMPORT_STATE_RUNNING: ImportState
IMPORT_STATE_SUCCEEDED: ImportState
IMPORT_STATE_FAILED: ImportState

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
    __slots__ = ("id", "dataset_id", "number", "manifest", "case_count", "split_counts", "classes", "annotation_types", "source_format", "import_warnings", "create_time", "statistics", "parent_version_id", "ignore_index", "import_id")
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
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    IGNORE_INDEX_FIELD_NUMBER: _ClassVar[int]
    IMPORT_ID_FIELD_NUMBER: _ClassVar[int]
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
    statistics: DatasetStatistics
    parent_version_id: str
    ignore_index: int
    import_id: str
    def __init__(self, id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., number: _Optional[int] = ..., manifest: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., case_count: _Optional[int] = ..., split_counts: _Optional[_Union[SplitCounts, _Mapping]] = ..., classes: _Optional[_Iterable[_Union[ClassInfo, _Mapping]]] = ..., annotation_types: _Optional[_Iterable[_Union[_common_pb2.AnnotationType, str]]] = ..., source_format: _Optional[_Union[DatasetFormat, str]] = ..., import_warnings: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., statistics: _Optional[_Union[DatasetStatistics, _Mapping]] = ..., parent_version_id: _Optional[str] = ..., ignore_index: _Optional[int] = ..., import_id: _Optional[str] = ...) -> None: ...

class ClassStatistics(_message.Message):
    __slots__ = ("index", "name", "image_count", "instance_count")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    image_count: int
    instance_count: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., image_count: _Optional[int] = ..., instance_count: _Optional[int] = ...) -> None: ...

class Percentiles(_message.Message):
    __slots__ = ("min", "p5", "p50", "p95", "max", "mean")
    MIN_FIELD_NUMBER: _ClassVar[int]
    P5_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    min: float
    p5: float
    p50: float
    p95: float
    max: float
    mean: float
    def __init__(self, min: _Optional[float] = ..., p5: _Optional[float] = ..., p50: _Optional[float] = ..., p95: _Optional[float] = ..., max: _Optional[float] = ..., mean: _Optional[float] = ...) -> None: ...

class RejectedFile(_message.Message):
    __slots__ = ("path", "reason")
    PATH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    path: str
    reason: str
    def __init__(self, path: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DatasetStatistics(_message.Message):
    __slots__ = ("classes", "imbalance_ratio", "width", "height", "grayscale_fraction", "objects_per_image", "small_boxes", "medium_boxes", "large_boxes", "duplicate_groups", "conflict_groups", "leak_groups", "rejected_files", "empty_images")
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    IMBALANCE_RATIO_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    GRAYSCALE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    SMALL_BOXES_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_BOXES_FIELD_NUMBER: _ClassVar[int]
    LARGE_BOXES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_GROUPS_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_GROUPS_FIELD_NUMBER: _ClassVar[int]
    LEAK_GROUPS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FILES_FIELD_NUMBER: _ClassVar[int]
    EMPTY_IMAGES_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[ClassStatistics]
    imbalance_ratio: float
    width: Percentiles
    height: Percentiles
    grayscale_fraction: float
    objects_per_image: Percentiles
    small_boxes: int
    medium_boxes: int
    large_boxes: int
    duplicate_groups: int
    conflict_groups: int
    leak_groups: int
    rejected_files: _containers.RepeatedCompositeFieldContainer[RejectedFile]
    empty_images: int
    def __init__(self, classes: _Optional[_Iterable[_Union[ClassStatistics, _Mapping]]] = ..., imbalance_ratio: _Optional[float] = ..., width: _Optional[_Union[Percentiles, _Mapping]] = ..., height: _Optional[_Union[Percentiles, _Mapping]] = ..., grayscale_fraction: _Optional[float] = ..., objects_per_image: _Optional[_Union[Percentiles, _Mapping]] = ..., small_boxes: _Optional[int] = ..., medium_boxes: _Optional[int] = ..., large_boxes: _Optional[int] = ..., duplicate_groups: _Optional[int] = ..., conflict_groups: _Optional[int] = ..., leak_groups: _Optional[int] = ..., rejected_files: _Optional[_Iterable[_Union[RejectedFile, _Mapping]]] = ..., empty_images: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("type", "class_index", "class_name", "box", "polygons", "rle_counts", "rle_size", "mask_key", "mask_png")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    POLYGONS_FIELD_NUMBER: _ClassVar[int]
    RLE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    RLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_FIELD_NUMBER: _ClassVar[int]
    MASK_PNG_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.AnnotationType
    class_index: int
    class_name: str
    box: _containers.RepeatedScalarFieldContainer[float]
    polygons: _containers.RepeatedCompositeFieldContainer[Polygon]
    rle_counts: str
    rle_size: _containers.RepeatedScalarFieldContainer[int]
    mask_key: str
    mask_png: bytes
    def __init__(self, type: _Optional[_Union[_common_pb2.AnnotationType, str]] = ..., class_index: _Optional[int] = ..., class_name: _Optional[str] = ..., box: _Optional[_Iterable[float]] = ..., polygons: _Optional[_Iterable[_Union[Polygon, _Mapping]]] = ..., rle_counts: _Optional[str] = ..., rle_size: _Optional[_Iterable[int]] = ..., mask_key: _Optional[str] = ..., mask_png: _Optional[bytes] = ...) -> None: ...

class Polygon(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, points: _Optional[_Iterable[float]] = ...) -> None: ...

class LegendEntry(_message.Message):
    __slots__ = ("class_index", "class_name", "colour")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    class_name: str
    colour: str
    def __init__(self, class_index: _Optional[int] = ..., class_name: _Optional[str] = ..., colour: _Optional[str] = ...) -> None: ...

class ImportStatus(_message.Message):
    __slots__ = ("id", "state", "done", "total", "message", "dataset_id", "version_id", "rejected_files", "rejected_count", "warning_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FILES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    WARNING_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: ImportState
    done: int
    total: int
    message: str
    dataset_id: str
    version_id: str
    rejected_files: _containers.RepeatedCompositeFieldContainer[RejectedFile]
    rejected_count: int
    warning_count: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[ImportState, str]] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ..., dataset_id: _Optional[str] = ..., version_id: _Optional[str] = ..., rejected_files: _Optional[_Iterable[_Union[RejectedFile, _Mapping]]] = ..., rejected_count: _Optional[int] = ..., warning_count: _Optional[int] = ...) -> None: ...

class Case(_message.Message):
    __slots__ = ("id", "source_path", "image_sha256", "width", "height", "split", "annotations", "preview_jpeg", "image_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_JPEG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    source_path: str
    image_sha256: str
    width: int
    height: int
    split: _common_pb2.Split
    annotations: _containers.RepeatedCompositeFieldContainer[Annotation]
    preview_jpeg: bytes
    image_url: str
    def __init__(self, id: _Optional[str] = ..., source_path: _Optional[str] = ..., image_sha256: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ..., annotations: _Optional[_Iterable[_Union[Annotation, _Mapping]]] = ..., preview_jpeg: _Optional[bytes] = ..., image_url: _Optional[str] = ...) -> None: ...
