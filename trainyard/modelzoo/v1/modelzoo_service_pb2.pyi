from trainyard.common.v1 import common_pb2 as _common_pb2
from trainyard.common.v1 import options_pb2 as _options_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2 as _modelzoo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListModelFamiliesRequest(_message.Message):
    __slots__ = ("task_type", "page_size", "page_token")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    page_size: int
    page_token: str
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelFamiliesResponse(_message.Message):
    __slots__ = ("families", "next_page_token")
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    families: _containers.RepeatedCompositeFieldContainer[_modelzoo_pb2.ModelFamily]
    next_page_token: str
    def __init__(self, families: _Optional[_Iterable[_Union[_modelzoo_pb2.ModelFamily, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("task_type", "family", "pretrain_dataset", "max_params", "max_gflops", "weights_in_store", "query", "page_size", "page_token", "origin")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_DATASET_FIELD_NUMBER: _ClassVar[int]
    MAX_PARAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_GFLOPS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_IN_STORE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    family: str
    pretrain_dataset: str
    max_params: int
    max_gflops: float
    weights_in_store: bool
    query: str
    page_size: int
    page_token: str
    origin: str
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., family: _Optional[str] = ..., pretrain_dataset: _Optional[str] = ..., max_params: _Optional[int] = ..., max_gflops: _Optional[float] = ..., weights_in_store: _Optional[bool] = ..., query: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., origin: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token", "total_size")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_modelzoo_pb2.Model]
    next_page_token: str
    total_size: int
    def __init__(self, models: _Optional[_Iterable[_Union[_modelzoo_pb2.Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _modelzoo_pb2.Model
    def __init__(self, model: _Optional[_Union[_modelzoo_pb2.Model, _Mapping]] = ...) -> None: ...

class ImportWeightsRequest(_message.Message):
    __slots__ = ("model_id", "upload", "scope")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    upload: _common_pb2.ObjectRef
    scope: _modelzoo_pb2.WeightsScope
    def __init__(self, model_id: _Optional[str] = ..., upload: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., scope: _Optional[_Union[_modelzoo_pb2.WeightsScope, str]] = ...) -> None: ...

class ImportWeightsResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _modelzoo_pb2.Model
    def __init__(self, model: _Optional[_Union[_modelzoo_pb2.Model, _Mapping]] = ...) -> None: ...

class UploadWeightsHeader(_message.Message):
    __slots__ = ("model_id", "size_bytes", "sha256", "scope", "origin")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    size_bytes: int
    sha256: str
    scope: _modelzoo_pb2.WeightsScope
    origin: str
    def __init__(self, model_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., scope: _Optional[_Union[_modelzoo_pb2.WeightsScope, str]] = ..., origin: _Optional[str] = ...) -> None: ...

class UploadWeightsRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadWeightsHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadWeightsHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadWeightsResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _modelzoo_pb2.Model
    def __init__(self, model: _Optional[_Union[_modelzoo_pb2.Model, _Mapping]] = ...) -> None: ...

class RegisterTrainedModelRequest(_message.Message):
    __slots__ = ("task_id", "name", "base_model_id", "task_type", "library", "architecture", "class_names", "dataset_id", "dataset_version_id", "metrics", "weights", "default_input_size", "mean", "std", "request_id")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    base_model_id: str
    task_type: _common_pb2.TaskType
    library: str
    architecture: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    dataset_id: str
    dataset_version_id: str
    metrics: _containers.ScalarMap[str, float]
    weights: _common_pb2.ObjectRef
    default_input_size: int
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    request_id: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., base_model_id: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., library: _Optional[str] = ..., architecture: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., dataset_id: _Optional[str] = ..., dataset_version_id: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., default_input_size: _Optional[int] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RegisterTrainedModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _modelzoo_pb2.Model
    def __init__(self, model: _Optional[_Union[_modelzoo_pb2.Model, _Mapping]] = ...) -> None: ...

class DeleteTrainedModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class DeleteTrainedModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PullWeightsRequest(_message.Message):
    __slots__ = ("selection",)
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    selection: _modelzoo_pb2.WeightsSelection
    def __init__(self, selection: _Optional[_Union[_modelzoo_pb2.WeightsSelection, _Mapping]] = ...) -> None: ...

class PullWeightsResponse(_message.Message):
    __slots__ = ("pull",)
    PULL_FIELD_NUMBER: _ClassVar[int]
    pull: _modelzoo_pb2.WeightsPull
    def __init__(self, pull: _Optional[_Union[_modelzoo_pb2.WeightsPull, _Mapping]] = ...) -> None: ...

class ExportWeightsRequest(_message.Message):
    __slots__ = ("selection",)
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    selection: _modelzoo_pb2.WeightsSelection
    def __init__(self, selection: _Optional[_Union[_modelzoo_pb2.WeightsSelection, _Mapping]] = ...) -> None: ...

class ExportWeightsResponse(_message.Message):
    __slots__ = ("file", "chunk")
    FILE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    file: _modelzoo_pb2.ExportedWeights
    chunk: bytes
    def __init__(self, file: _Optional[_Union[_modelzoo_pb2.ExportedWeights, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ListPresetsRequest(_message.Message):
    __slots__ = ("task_type", "data_type", "page_size", "page_token")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    data_type: _common_pb2.DataType
    page_size: int
    page_token: str
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPresetsResponse(_message.Message):
    __slots__ = ("presets", "next_page_token")
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    presets: _containers.RepeatedCompositeFieldContainer[_modelzoo_pb2.Preset]
    next_page_token: str
    def __init__(self, presets: _Optional[_Iterable[_Union[_modelzoo_pb2.Preset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPresetRequest(_message.Message):
    __slots__ = ("preset_id",)
    PRESET_ID_FIELD_NUMBER: _ClassVar[int]
    preset_id: str
    def __init__(self, preset_id: _Optional[str] = ...) -> None: ...

class GetPresetResponse(_message.Message):
    __slots__ = ("preset",)
    PRESET_FIELD_NUMBER: _ClassVar[int]
    preset: _modelzoo_pb2.Preset
    def __init__(self, preset: _Optional[_Union[_modelzoo_pb2.Preset, _Mapping]] = ...) -> None: ...
