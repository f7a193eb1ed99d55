import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from trainyard.common.v1 import common_pb2 as _common_pb2
from trainyard.recommend.v1 import recommend_pb2 as _recommend_pb2
from trainyard.training.v1 import evaluation_pb2 as _evaluation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_PENDING: _ClassVar[TaskState]
    TASK_STATE_QUEUED: _ClassVar[TaskState]
    TASK_STATE_RUNNING: _ClassVar[TaskState]
    TASK_STATE_SUCCEEDED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]

class TrainingModeSelection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_MODE_SELECTION_UNSPECIFIED: _ClassVar[TrainingModeSelection]
    TRAINING_MODE_SELECTION_GENERAL: _ClassVar[TrainingModeSelection]
    TRAINING_MODE_SELECTION_SPECIALIZED: _ClassVar[TrainingModeSelection]
    TRAINING_MODE_SELECTION_RETRAINING: _ClassVar[TrainingModeSelection]

class SearchMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_METHOD_UNSPECIFIED: _ClassVar[SearchMethod]
    SEARCH_METHOD_RANDOM: _ClassVar[SearchMethod]
    SEARCH_METHOD_TPE: _ClassVar[SearchMethod]
    SEARCH_METHOD_GRID: _ClassVar[SearchMethod]

class PruningMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRUNING_METHOD_UNSPECIFIED: _ClassVar[PruningMethod]
    PRUNING_METHOD_NONE: _ClassVar[PruningMethod]
    PRUNING_METHOD_MEDIAN: _ClassVar[PruningMethod]
    PRUNING_METHOD_SUCCESSIVE_HALVING: _ClassVar[PruningMethod]

class ObjectiveDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTIVE_DIRECTION_UNSPECIFIED: _ClassVar[ObjectiveDirection]
    OBJECTIVE_DIRECTION_MAXIMIZE: _ClassVar[ObjectiveDirection]
    OBJECTIVE_DIRECTION_MINIMIZE: _ClassVar[ObjectiveDirection]

class TrialState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAL_STATE_UNSPECIFIED: _ClassVar[TrialState]
    TRIAL_STATE_QUEUED: _ClassVar[TrialState]
    TRIAL_STATE_RUNNING: _ClassVar[TrialState]
    TRIAL_STATE_COMPLETE: _ClassVar[TrialState]
    TRIAL_STATE_PRUNED: _ClassVar[TrialState]
    TRIAL_STATE_FAILED: _ClassVar[TrialState]
    TRIAL_STATE_CANCELLED: _ClassVar[TrialState]

class HyperparameterKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HYPERPARAMETER_KIND_UNSPECIFIED: _ClassVar[HyperparameterKind]
    HYPERPARAMETER_KIND_INT: _ClassVar[HyperparameterKind]
    HYPERPARAMETER_KIND_FLOAT: _ClassVar[HyperparameterKind]
    HYPERPARAMETER_KIND_CHOICE: _ClassVar[HyperparameterKind]
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_PENDING: TaskState
TASK_STATE_QUEUED: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELLED: TaskState
TRAINING_MODE_SELECTION_UNSPECIFIED: TrainingModeSelection
TRAINING_MODE_SELECTION_GENERAL: TrainingModeSelection
TRAINING_MODE_SELECTION_SPECIALIZED: TrainingModeSelection
TRAINING_MODE_SELECTION_RETRAINING: TrainingModeSelection
SEARCH_METHOD_UNSPECIFIED: SearchMethod
SEARCH_METHOD_RANDOM: SearchMethod
SEARCH_METHOD_TPE: SearchMethod
SEARCH_METHOD_GRID: SearchMethod
PRUNING_METHOD_UNSPECIFIED: PruningMethod
PRUNING_METHOD_NONE: PruningMethod
PRUNING_METHOD_MEDIAN: PruningMethod
PRUNING_METHOD_SUCCESSIVE_HALVING: PruningMethod
OBJECTIVE_DIRECTION_UNSPECIFIED: ObjectiveDirection
OBJECTIVE_DIRECTION_MAXIMIZE: ObjectiveDirection
OBJECTIVE_DIRECTION_MINIMIZE: ObjectiveDirection
TRIAL_STATE_UNSPECIFIED: TrialState
TRIAL_STATE_QUEUED: TrialState
TRIAL_STATE_RUNNING: TrialState
TRIAL_STATE_COMPLETE: TrialState
TRIAL_STATE_PRUNED: TrialState
TRIAL_STATE_FAILED: TrialState
TRIAL_STATE_CANCELLED: TrialState
HYPERPARAMETER_KIND_UNSPECIFIED: HyperparameterKind
HYPERPARAMETER_KIND_INT: HyperparameterKind
HYPERPARAMETER_KIND_FLOAT: HyperparameterKind
HYPERPARAMETER_KIND_CHOICE: HyperparameterKind

class AutoSelect(_message.Message):
    __slots__ = ("data_type", "preference")
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    data_type: _common_pb2.DataType
    preference: _common_pb2.TrainingPreference
    def __init__(self, data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., preference: _Optional[_Union[_common_pb2.TrainingPreference, str]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("epoch", "total_epochs", "step", "total_steps", "images_per_second", "eta_seconds", "fraction")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    total_epochs: int
    step: int
    total_steps: int
    images_per_second: float
    eta_seconds: float
    fraction: float
    def __init__(self, epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., images_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., fraction: _Optional[float] = ...) -> None: ...

class EpochMetrics(_message.Message):
    __slots__ = ("epoch", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    values: _containers.ScalarMap[str, float]
    def __init__(self, epoch: _Optional[int] = ..., values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "object")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    name: str
    object: _common_pb2.ObjectRef
    def __init__(self, name: _Optional[str] = ..., object: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ...) -> None: ...

class TrainingTask(_message.Message):
    __slots__ = ("id", "project", "name", "description", "task_type", "dataset_id", "dataset_version_id", "model_id", "mode", "auto_select", "transfer_strategy", "hyperparameters", "state", "failure_reason", "trainer_node", "attempt", "progress", "metrics", "epoch_metrics", "artifacts", "create_time", "start_time", "end_time", "selection_rationale", "preset_id", "resources", "search", "search_task_id", "trial_number", "pretrained_weights", "evaluation_id", "evaluation", "data_type", "suggestion")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    AUTO_SELECT_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    TRAINER_NODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_METRICS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SELECTION_RATIONALE_FIELD_NUMBER: _ClassVar[int]
    PRESET_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    SEARCH_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    project: str
    name: str
    description: str
    task_type: _common_pb2.TaskType
    dataset_id: str
    dataset_version_id: str
    model_id: str
    mode: TrainingModeSelection
    auto_select: AutoSelect
    transfer_strategy: _common_pb2.TransferStrategy
    hyperparameters: _common_pb2.Hyperparameters
    state: TaskState
    failure_reason: str
    trainer_node: str
    attempt: int
    progress: Progress
    metrics: _containers.ScalarMap[str, float]
    epoch_metrics: _containers.RepeatedCompositeFieldContainer[EpochMetrics]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    selection_rationale: str
    preset_id: str
    resources: _common_pb2.ComputeResources
    search: HyperparameterSearch
    search_task_id: str
    trial_number: int
    pretrained_weights: _common_pb2.ObjectRef
    evaluation_id: str
    evaluation: _evaluation_pb2.EvaluationSummary
    data_type: _common_pb2.DataType
    suggestion: _recommend_pb2.Suggestion
    def __init__(self, id: _Optional[str] = ..., project: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., dataset_id: _Optional[str] = ..., dataset_version_id: _Optional[str] = ..., model_id: _Optional[str] = ..., mode: _Optional[_Union[TrainingModeSelection, str]] = ..., auto_select: _Optional[_Union[AutoSelect, _Mapping]] = ..., transfer_strategy: _Optional[_Union[_common_pb2.TransferStrategy, str]] = ..., hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., state: _Optional[_Union[TaskState, str]] = ..., failure_reason: _Optional[str] = ..., trainer_node: _Optional[str] = ..., attempt: _Optional[int] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., epoch_metrics: _Optional[_Iterable[_Union[EpochMetrics, _Mapping]]] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., selection_rationale: _Optional[str] = ..., preset_id: _Optional[str] = ..., resources: _Optional[_Union[_common_pb2.ComputeResources, _Mapping]] = ..., search: _Optional[_Union[HyperparameterSearch, _Mapping]] = ..., search_task_id: _Optional[str] = ..., trial_number: _Optional[int] = ..., pretrained_weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., evaluation_id: _Optional[str] = ..., evaluation: _Optional[_Union[_evaluation_pb2.EvaluationSummary, _Mapping]] = ..., data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., suggestion: _Optional[_Union[_recommend_pb2.Suggestion, _Mapping]] = ...) -> None: ...

class SearchParameter(_message.Message):
    __slots__ = ("name", "low", "high", "log", "step", "choices")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    name: str
    low: float
    high: float
    log: bool
    step: float
    choices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., log: _Optional[bool] = ..., step: _Optional[float] = ..., choices: _Optional[_Iterable[str]] = ...) -> None: ...

class Pruning(_message.Message):
    __slots__ = ("method", "warmup_epochs", "startup_trials", "min_epochs", "reduction_factor")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MIN_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    method: PruningMethod
    warmup_epochs: int
    startup_trials: int
    min_epochs: int
    reduction_factor: int
    def __init__(self, method: _Optional[_Union[PruningMethod, str]] = ..., warmup_epochs: _Optional[int] = ..., startup_trials: _Optional[int] = ..., min_epochs: _Optional[int] = ..., reduction_factor: _Optional[int] = ...) -> None: ...

class HyperparameterSearch(_message.Message):
    __slots__ = ("method", "parameters", "max_trials", "parallelism", "max_duration_seconds", "objective_metric", "direction", "pruning", "seed")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PRUNING_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    method: SearchMethod
    parameters: _containers.RepeatedCompositeFieldContainer[SearchParameter]
    max_trials: int
    parallelism: int
    max_duration_seconds: int
    objective_metric: str
    direction: ObjectiveDirection
    pruning: Pruning
    seed: int
    def __init__(self, method: _Optional[_Union[SearchMethod, str]] = ..., parameters: _Optional[_Iterable[_Union[SearchParameter, _Mapping]]] = ..., max_trials: _Optional[int] = ..., parallelism: _Optional[int] = ..., max_duration_seconds: _Optional[int] = ..., objective_metric: _Optional[str] = ..., direction: _Optional[_Union[ObjectiveDirection, str]] = ..., pruning: _Optional[_Union[Pruning, _Mapping]] = ..., seed: _Optional[int] = ...) -> None: ...

class TrialParameter(_message.Message):
    __slots__ = ("name", "number", "text")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    name: str
    number: float
    text: str
    def __init__(self, name: _Optional[str] = ..., number: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("number", "task_id", "state", "parameters", "hyperparameters", "epoch_metrics", "metrics", "objective_value", "pruned_epoch", "reason", "best", "create_time", "end_time")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_VALUE_FIELD_NUMBER: _ClassVar[int]
    PRUNED_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    number: int
    task_id: str
    state: TrialState
    parameters: _containers.RepeatedCompositeFieldContainer[TrialParameter]
    hyperparameters: _common_pb2.Hyperparameters
    epoch_metrics: _containers.RepeatedCompositeFieldContainer[EpochMetrics]
    metrics: _containers.ScalarMap[str, float]
    objective_value: float
    pruned_epoch: int
    reason: str
    best: bool
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, number: _Optional[int] = ..., task_id: _Optional[str] = ..., state: _Optional[_Union[TrialState, str]] = ..., parameters: _Optional[_Iterable[_Union[TrialParameter, _Mapping]]] = ..., hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., epoch_metrics: _Optional[_Iterable[_Union[EpochMetrics, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., objective_value: _Optional[float] = ..., pruned_epoch: _Optional[int] = ..., reason: _Optional[str] = ..., best: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HyperparameterSpec(_message.Message):
    __slots__ = ("name", "description", "kind", "minimum", "maximum", "minimum_exclusive", "default_number", "default_choice", "choices", "searchable", "default_search")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CHOICE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    SEARCHABLE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SEARCH_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    kind: HyperparameterKind
    minimum: float
    maximum: float
    minimum_exclusive: bool
    default_number: float
    default_choice: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    searchable: bool
    default_search: SearchParameter
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[HyperparameterKind, str]] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., minimum_exclusive: _Optional[bool] = ..., default_number: _Optional[float] = ..., default_choice: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., searchable: _Optional[bool] = ..., default_search: _Optional[_Union[SearchParameter, _Mapping]] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("sequence", "time", "task", "progress", "epoch_metrics", "log")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_METRICS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    task: TrainingTask
    progress: Progress
    epoch_metrics: EpochMetrics
    log: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., task: _Optional[_Union[TrainingTask, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., epoch_metrics: _Optional[_Union[EpochMetrics, _Mapping]] = ..., log: _Optional[str] = ...) -> None: ...
