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

class WeightStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEIGHT_STATUS_UNSPECIFIED: _ClassVar[WeightStatus]
    WEIGHT_STATUS_IN_STORE: _ClassVar[WeightStatus]
    WEIGHT_STATUS_IMPORTABLE: _ClassVar[WeightStatus]
    WEIGHT_STATUS_UNAVAILABLE: _ClassVar[WeightStatus]

class WeightsScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEIGHTS_SCOPE_UNSPECIFIED: _ClassVar[WeightsScope]
    WEIGHTS_SCOPE_PROJECT: _ClassVar[WeightsScope]
    WEIGHTS_SCOPE_PUBLIC: _ClassVar[WeightsScope]

class TrainingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_MODE_UNSPECIFIED: _ClassVar[TrainingMode]
    TRAINING_MODE_GENERAL: _ClassVar[TrainingMode]
    TRAINING_MODE_SPECIALIZED: _ClassVar[TrainingMode]
    TRAINING_MODE_RETRAINING: _ClassVar[TrainingMode]

class PullState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PULL_STATE_UNSPECIFIED: _ClassVar[PullState]
    PULL_STATE_QUEUED: _ClassVar[PullState]
    PULL_STATE_DOWNLOADING: _ClassVar[PullState]
    PULL_STATE_CHECKING: _ClassVar[PullState]
    PULL_STATE_STORED: _ClassVar[PullState]
    PULL_STATE_ALREADY_IN_STORE: _ClassVar[PullState]
    PULL_STATE_FAILED: _ClassVar[PullState]
WEIGHT_STATUS_UNSPECIFIED: WeightStatus
WEIGHT_STATUS_IN_STORE: WeightStatus
WEIGHT_STATUS_IMPORTABLE: WeightStatus
WEIGHT_STATUS_UNAVAILABLE: WeightStatus
WEIGHTS_SCOPE_UNSPECIFIED: WeightsScope
WEIGHTS_SCOPE_PROJECT: WeightsScope
WEIGHTS_SCOPE_PUBLIC: WeightsScope
TRAINING_MODE_UNSPECIFIED: TrainingMode
TRAINING_MODE_GENERAL: TrainingMode
TRAINING_MODE_SPECIALIZED: TrainingMode
TRAINING_MODE_RETRAINING: TrainingMode
PULL_STATE_UNSPECIFIED: PullState
PULL_STATE_QUEUED: PullState
PULL_STATE_DOWNLOADING: PullState
PULL_STATE_CHECKING: PullState
PULL_STATE_STORED: PullState
PULL_STATE_ALREADY_IN_STORE: PullState
PULL_STATE_FAILED: PullState

class ModelFamily(_message.Message):
    __slots__ = ("name", "description", "task_types", "variant_count", "weights_in_store_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    VARIANT_COUNT_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_IN_STORE_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    task_types: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskType]
    variant_count: int
    weights_in_store_count: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., task_types: _Optional[_Iterable[_Union[_common_pb2.TaskType, str]]] = ..., variant_count: _Optional[int] = ..., weights_in_store_count: _Optional[int] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "family", "variant", "task_types", "architecture", "library", "pretrain_dataset", "pretrain_tag", "license", "num_params", "gflops", "default_input_size", "mean", "std", "reference_metrics", "weight_status", "weights", "training_modes", "pretrained_num_classes", "source_url", "backbone", "backbone_model_id", "backbone_weight_status", "backbone_weights", "name", "base_model_id", "dataset_id", "dataset_version_id", "task_id", "class_names", "metrics", "create_time", "resize_size", "origin", "library_version", "default_hyperparameters", "weights_scope")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_DATASET_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_TAG_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    NUM_PARAMS_FIELD_NUMBER: _ClassVar[int]
    GFLOPS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_METRICS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_STATUS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MODES_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_WEIGHT_STATUS_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESIZE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SCOPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    family: str
    variant: str
    task_types: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskType]
    architecture: str
    library: str
    pretrain_dataset: str
    pretrain_tag: str
    license: str
    num_params: int
    gflops: float
    default_input_size: int
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    reference_metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    weight_status: WeightStatus
    weights: _common_pb2.ObjectRef
    training_modes: _containers.RepeatedScalarFieldContainer[TrainingMode]
    pretrained_num_classes: int
    source_url: str
    backbone: str
    backbone_model_id: str
    backbone_weight_status: WeightStatus
    backbone_weights: _common_pb2.ObjectRef
    name: str
    base_model_id: str
    dataset_id: str
    dataset_version_id: str
    task_id: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.ScalarMap[str, float]
    create_time: _timestamp_pb2.Timestamp
    resize_size: int
    origin: str
    library_version: str
    default_hyperparameters: _common_pb2.Hyperparameters
    weights_scope: WeightsScope
    def __init__(self, id: _Optional[str] = ..., family: _Optional[str] = ..., variant: _Optional[str] = ..., task_types: _Optional[_Iterable[_Union[_common_pb2.TaskType, str]]] = ..., architecture: _Optional[str] = ..., library: _Optional[str] = ..., pretrain_dataset: _Optional[str] = ..., pretrain_tag: _Optional[str] = ..., license: _Optional[str] = ..., num_params: _Optional[int] = ..., gflops: _Optional[float] = ..., default_input_size: _Optional[int] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., reference_metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ..., weight_status: _Optional[_Union[WeightStatus, str]] = ..., weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., training_modes: _Optional[_Iterable[_Union[TrainingMode, str]]] = ..., pretrained_num_classes: _Optional[int] = ..., source_url: _Optional[str] = ..., backbone: _Optional[str] = ..., backbone_model_id: _Optional[str] = ..., backbone_weight_status: _Optional[_Union[WeightStatus, str]] = ..., backbone_weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., name: _Optional[str] = ..., base_model_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_version_id: _Optional[str] = ..., task_id: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resize_size: _Optional[int] = ..., origin: _Optional[str] = ..., library_version: _Optional[str] = ..., default_hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., weights_scope: _Optional[_Union[WeightsScope, str]] = ...) -> None: ...

class Preset(_message.Message):
    __slots__ = ("id", "name", "description", "task_type", "model_id", "hyperparameters", "transfer_strategy", "augmentation", "data_type", "input_size", "example_classes", "weight_status", "weights_model_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_CLASSES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_STATUS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    task_type: _common_pb2.TaskType
    model_id: str
    hyperparameters: _common_pb2.Hyperparameters
    transfer_strategy: _common_pb2.TransferStrategy
    augmentation: str
    data_type: _common_pb2.DataType
    input_size: int
    example_classes: _containers.RepeatedScalarFieldContainer[str]
    weight_status: WeightStatus
    weights_model_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., model_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., transfer_strategy: _Optional[_Union[_common_pb2.TransferStrategy, str]] = ..., augmentation: _Optional[str] = ..., data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., input_size: _Optional[int] = ..., example_classes: _Optional[_Iterable[str]] = ..., weight_status: _Optional[_Union[WeightStatus, str]] = ..., weights_model_id: _Optional[str] = ...) -> None: ...

class WeightsSelection(_message.Message):
    __slots__ = ("model_ids", "family", "task_type", "preset_ids")
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRESET_IDS_FIELD_NUMBER: _ClassVar[int]
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    family: str
    task_type: _common_pb2.TaskType
    preset_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_ids: _Optional[_Iterable[str]] = ..., family: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., preset_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WeightsPull(_message.Message):
    __slots__ = ("model_id", "for_model_ids", "state", "url", "bytes_done", "bytes_total", "weights", "error_code", "error_reason", "error_message")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FOR_MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    for_model_ids: _containers.RepeatedScalarFieldContainer[str]
    state: PullState
    url: str
    bytes_done: int
    bytes_total: int
    weights: _common_pb2.ObjectRef
    error_code: str
    error_reason: str
    error_message: str
    def __init__(self, model_id: _Optional[str] = ..., for_model_ids: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[PullState, str]] = ..., url: _Optional[str] = ..., bytes_done: _Optional[int] = ..., bytes_total: _Optional[int] = ..., weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., error_code: _Optional[str] = ..., error_reason: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class ExportedWeights(_message.Message):
    __slots__ = ("model_id", "for_model_ids", "library", "architecture", "weights", "source", "scope", "file_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FOR_MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    for_model_ids: _containers.RepeatedScalarFieldContainer[str]
    library: str
    architecture: str
    weights: _common_pb2.ObjectRef
    source: str
    scope: WeightsScope
    file_name: str
    def __init__(self, model_id: _Optional[str] = ..., for_model_ids: _Optional[_Iterable[str]] = ..., library: _Optional[str] = ..., architecture: _Optional[str] = ..., weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., source: _Optional[str] = ..., scope: _Optional[_Union[WeightsScope, str]] = ..., file_name: _Optional[str] = ...) -> None: ...
