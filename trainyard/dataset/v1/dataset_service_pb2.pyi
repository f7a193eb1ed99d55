from trainyard.common.v1 import common_pb2 as _common_pb2
from trainyard.dataset.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_MODE_UNSPECIFIED: _ClassVar[VersionMode]
    VERSION_MODE_ADD_OR_REPLACE: _ClassVar[VersionMode]
    VERSION_MODE_REPLACE_ALL: _ClassVar[VersionMode]
VERSION_MODE_UNSPECIFIED: VersionMode
VERSION_MODE_ADD_OR_REPLACE: VersionMode
VERSION_MODE_REPLACE_ALL: VersionMode

class CreateDatasetMetadata(_message.Message):
    __slots__ = ("name", "description", "format", "archive_type", "val_fraction", "test_fraction", "split_seed", "request_id", "accept_partial", "ignore_index", "task_type", "drop_duplicates")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SEED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    IGNORE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DROP_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    format: _dataset_pb2.DatasetFormat
    archive_type: _dataset_pb2.ArchiveType
    val_fraction: float
    test_fraction: float
    split_seed: int
    request_id: str
    accept_partial: bool
    ignore_index: int
    task_type: _common_pb2.TaskType
    drop_duplicates: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., format: _Optional[_Union[_dataset_pb2.DatasetFormat, str]] = ..., archive_type: _Optional[_Union[_dataset_pb2.ArchiveType, str]] = ..., val_fraction: _Optional[float] = ..., test_fraction: _Optional[float] = ..., split_seed: _Optional[int] = ..., request_id: _Optional[str] = ..., accept_partial: _Optional[bool] = ..., ignore_index: _Optional[int] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., drop_duplicates: _Optional[bool] = ...) -> None: ...

class CreateDatasetVersionMetadata(_message.Message):
    __slots__ = ("dataset_id", "mode", "format", "archive_type", "val_fraction", "test_fraction", "split_seed", "accept_partial", "request_id", "ignore_index", "drop_duplicates")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SEED_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IGNORE_INDEX_FIELD_NUMBER: _ClassVar[int]
    DROP_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    mode: VersionMode
    format: _dataset_pb2.DatasetFormat
    archive_type: _dataset_pb2.ArchiveType
    val_fraction: float
    test_fraction: float
    split_seed: int
    accept_partial: bool
    request_id: str
    ignore_index: int
    drop_duplicates: bool
    def __init__(self, dataset_id: _Optional[str] = ..., mode: _Optional[_Union[VersionMode, str]] = ..., format: _Optional[_Union[_dataset_pb2.DatasetFormat, str]] = ..., archive_type: _Optional[_Union[_dataset_pb2.ArchiveType, str]] = ..., val_fraction: _Optional[float] = ..., test_fraction: _Optional[float] = ..., split_seed: _Optional[int] = ..., accept_partial: _Optional[bool] = ..., request_id: _Optional[str] = ..., ignore_index: _Optional[int] = ..., drop_duplicates: _Optional[bool] = ...) -> None: ...

class CreateDatasetVersionRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: CreateDatasetVersionMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[CreateDatasetVersionMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CreateDatasetVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.DatasetVersion
    def __init__(self, version: _Optional[_Union[_dataset_pb2.DatasetVersion, _Mapping]] = ...) -> None: ...

class ImportDatasetRequest(_message.Message):
    __slots__ = ("source", "metadata", "dataset_id", "mode")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    source: _common_pb2.ObjectRef
    metadata: CreateDatasetMetadata
    dataset_id: str
    mode: VersionMode
    def __init__(self, source: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., metadata: _Optional[_Union[CreateDatasetMetadata, _Mapping]] = ..., dataset_id: _Optional[str] = ..., mode: _Optional[_Union[VersionMode, str]] = ...) -> None: ...

class ImportDatasetResponse(_message.Message):
    __slots__ = ()
    IMPORT_FIELD_NUMBER: _ClassVar[int]
    def __init__(self, **kwargs) -> None: ...

class WatchImportRequest(_message.Message):
    __slots__ = ("import_id",)
    IMPORT_ID_FIELD_NUMBER: _ClassVar[int]
    import_id: str
    def __init__(self, import_id: _Optional[str] = ...) -> None: ...

class WatchImportResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _dataset_pb2.ImportStatus
    def __init__(self, status: _Optional[_Union[_dataset_pb2.ImportStatus, _Mapping]] = ...) -> None: ...

class ExportDatasetVersionRequest(_message.Message):
    __slots__ = ("version_id", "format")
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    format: _dataset_pb2.ExportFormat
    def __init__(self, version_id: _Optional[str] = ..., format: _Optional[_Union[_dataset_pb2.ExportFormat, str]] = ...) -> None: ...

class ExportDatasetVersionResponse(_message.Message):
    __slots__ = ("archive", "url")
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    archive: _common_pb2.ObjectRef
    url: str
    def __init__(self, archive: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., url: _Optional[str] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: CreateDatasetMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[CreateDatasetMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CreateDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("task_type", "page_size", "page_token")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    page_size: int
    page_token: str
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[_dataset_pb2.Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDatasetVersionRequest(_message.Message):
    __slots__ = ("version_id",)
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    def __init__(self, version_id: _Optional[str] = ...) -> None: ...

class GetDatasetVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.DatasetVersion
    def __init__(self, version: _Optional[_Union[_dataset_pb2.DatasetVersion, _Mapping]] = ...) -> None: ...

class PreviewCasesRequest(_message.Message):
    __slots__ = ("dataset_id", "version_id", "count", "thumbnail_size", "split", "seed", "class_names")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    version_id: str
    count: int
    thumbnail_size: int
    split: _common_pb2.Split
    seed: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dataset_id: _Optional[str] = ..., version_id: _Optional[str] = ..., count: _Optional[int] = ..., thumbnail_size: _Optional[int] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ..., seed: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ...) -> None: ...

class PreviewCasesResponse(_message.Message):
    __slots__ = ("cases", "legend")
    CASES_FIELD_NUMBER: _ClassVar[int]
    LEGEND_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Case]
    legend: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.LegendEntry]
    def __init__(self, cases: _Optional[_Iterable[_Union[_dataset_pb2.Case, _Mapping]]] = ..., legend: _Optional[_Iterable[_Union[_dataset_pb2.LegendEntry, _Mapping]]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetImportReportRequest(_message.Message):
    __slots__ = ("import_id", "page_size", "page_token")
    IMPORT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    import_id: str
    page_size: int
    page_token: str
    def __init__(self, import_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetImportReportResponse(_message.Message):
    __slots__ = ("warnings", "rejected_files", "next_page_token")
    IMPORT_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    rejected_files: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.RejectedFile]
    next_page_token: str
    def __init__(self, warnings: _Optional[_Iterable[str]] = ..., rejected_files: _Optional[_Iterable[_Union[_dataset_pb2.RejectedFile, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., **kwargs) -> None: ...
