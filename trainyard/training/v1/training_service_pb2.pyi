import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from trainyard.common.v1 import common_pb2 as _common_pb2
from trainyard.recommend.v1 import recommend_pb2 as _recommend_pb2
from trainyard.training.v1 import evaluation_pb2 as _evaluation_pb2
from trainyard.training.v1 import training_pb2 as _training_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateTrainingTaskRequest(_message.Message):
    __slots__ = ("name", "description", "task_type", "dataset_id", "dataset_version_id", "model_id", "auto_select", "preset_id", "suggestion", "transfer_strategy", "hyperparameters", "request_id", "resources", "search", "data_type", "validate_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    AUTO_SELECT_FIELD_NUMBER: _ClassVar[int]
    PRESET_ID_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    task_type: _common_pb2.TaskType
    dataset_id: str
    dataset_version_id: str
    model_id: str
    auto_select: _training_pb2.AutoSelect
    preset_id: str
    suggestion: _recommend_pb2.Suggestion
    transfer_strategy: _common_pb2.TransferStrategy
    hyperparameters: _common_pb2.Hyperparameters
    request_id: str
    resources: _common_pb2.ComputeResources
    search: _training_pb2.HyperparameterSearch
    data_type: _common_pb2.DataType
    validate_only: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., dataset_id: _Optional[str] = ..., dataset_version_id: _Optional[str] = ..., model_id: _Optional[str] = ..., auto_select: _Optional[_Union[_training_pb2.AutoSelect, _Mapping]] = ..., preset_id: _Optional[str] = ..., suggestion: _Optional[_Union[_recommend_pb2.Suggestion, _Mapping]] = ..., transfer_strategy: _Optional[_Union[_common_pb2.TransferStrategy, str]] = ..., hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., request_id: _Optional[str] = ..., resources: _Optional[_Union[_common_pb2.ComputeResources, _Mapping]] = ..., search: _Optional[_Union[_training_pb2.HyperparameterSearch, _Mapping]] = ..., data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateTrainingTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _training_pb2.TrainingTask
    def __init__(self, task: _Optional[_Union[_training_pb2.TrainingTask, _Mapping]] = ...) -> None: ...

class GetTrainingTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTrainingTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _training_pb2.TrainingTask
    def __init__(self, task: _Optional[_Union[_training_pb2.TrainingTask, _Mapping]] = ...) -> None: ...

class ListTrainingTasksRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token", "model_id", "active_only")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    state: _training_pb2.TaskState
    page_size: int
    page_token: str
    model_id: str
    active_only: bool
    def __init__(self, state: _Optional[_Union[_training_pb2.TaskState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model_id: _Optional[str] = ..., active_only: _Optional[bool] = ...) -> None: ...

class ListTrainingTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_training_pb2.TrainingTask]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[_training_pb2.TrainingTask, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchTrainingTaskRequest(_message.Message):
    __slots__ = ("task_id", "from_start", "after_sequence")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    from_start: bool
    after_sequence: int
    def __init__(self, task_id: _Optional[str] = ..., from_start: _Optional[bool] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchTrainingTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _training_pb2.TaskEvent
    def __init__(self, event: _Optional[_Union[_training_pb2.TaskEvent, _Mapping]] = ...) -> None: ...

class CancelTrainingTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class CancelTrainingTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _training_pb2.TrainingTask
    def __init__(self, task: _Optional[_Union[_training_pb2.TrainingTask, _Mapping]] = ...) -> None: ...

class ContinueTrainingTaskRequest(_message.Message):
    __slots__ = ("task_id", "additional_epochs")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    additional_epochs: int
    def __init__(self, task_id: _Optional[str] = ..., additional_epochs: _Optional[int] = ...) -> None: ...

class ContinueTrainingTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _training_pb2.TrainingTask
    def __init__(self, task: _Optional[_Union[_training_pb2.TrainingTask, _Mapping]] = ...) -> None: ...

class DeleteTrainingTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class DeleteTrainingTaskResponse(_message.Message):
    __slots__ = ("deleted_objects", "deleted_bytes", "deleted_task_ids")
    DELETED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DELETED_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_objects: int
    deleted_bytes: int
    deleted_task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_objects: _Optional[int] = ..., deleted_bytes: _Optional[int] = ..., deleted_task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetTaskArtifactsRequest(_message.Message):
    __slots__ = ("task_id", "expires_in_seconds")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    expires_in_seconds: int
    def __init__(self, task_id: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class ArtifactLink(_message.Message):
    __slots__ = ("name", "url", "size_bytes", "expire_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    size_bytes: int
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., size_bytes: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetTaskArtifactsResponse(_message.Message):
    __slots__ = ("links",)
    LINKS_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[ArtifactLink]
    def __init__(self, links: _Optional[_Iterable[_Union[ArtifactLink, _Mapping]]] = ...) -> None: ...

class ListTrialsRequest(_message.Message):
    __slots__ = ("task_id", "page_size", "page_token")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    page_size: int
    page_token: str
    def __init__(self, task_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrialsResponse(_message.Message):
    __slots__ = ("trials", "next_page_token", "objective_metric", "direction")
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[_training_pb2.Trial]
    next_page_token: str
    objective_metric: str
    direction: _training_pb2.ObjectiveDirection
    def __init__(self, trials: _Optional[_Iterable[_Union[_training_pb2.Trial, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., objective_metric: _Optional[str] = ..., direction: _Optional[_Union[_training_pb2.ObjectiveDirection, str]] = ...) -> None: ...

class GetHyperparameterSchemaRequest(_message.Message):
    __slots__ = ("model_id", "task_type")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    task_type: _common_pb2.TaskType
    def __init__(self, model_id: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ...) -> None: ...

class GetHyperparameterSchemaResponse(_message.Message):
    __slots__ = ("parameters", "objective_metrics", "default_objective_metric")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_METRICS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_OBJECTIVE_METRIC_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedCompositeFieldContainer[_training_pb2.HyperparameterSpec]
    objective_metrics: _containers.RepeatedScalarFieldContainer[str]
    default_objective_metric: str
    def __init__(self, parameters: _Optional[_Iterable[_Union[_training_pb2.HyperparameterSpec, _Mapping]]] = ..., objective_metrics: _Optional[_Iterable[str]] = ..., default_objective_metric: _Optional[str] = ...) -> None: ...

class ReadTaskArtifactRequest(_message.Message):
    __slots__ = ("task_id", "name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ReadTaskArtifactResponse(_message.Message):
    __slots__ = ("chunk", "size_bytes", "sha256")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    size_bytes: int
    sha256: str
    def __init__(self, chunk: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class CreateEvaluationRequest(_message.Message):
    __slots__ = ("model_id", "dataset_id", "dataset_version_id", "splits", "batch_size", "request_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    dataset_id: str
    dataset_version_id: str
    splits: _containers.RepeatedScalarFieldContainer[_common_pb2.Split]
    batch_size: int
    request_id: str
    def __init__(self, model_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_version_id: _Optional[str] = ..., splits: _Optional[_Iterable[_Union[_common_pb2.Split, str]]] = ..., batch_size: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id",)
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    def __init__(self, evaluation_id: _Optional[str] = ...) -> None: ...

class GetEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("model_id", "page_size", "page_token")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    page_size: int
    page_token: str
    def __init__(self, model_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[_evaluation_pb2.Evaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[_evaluation_pb2.Evaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id",)
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    def __init__(self, evaluation_id: _Optional[str] = ...) -> None: ...

class WatchEvaluationResponse(_message.Message):
    __slots__ = ("evaluation", "log")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    log: str
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ..., log: _Optional[str] = ...) -> None: ...

class CancelEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id",)
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    def __init__(self, evaluation_id: _Optional[str] = ...) -> None: ...

class CancelEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class ListEvaluationCasesRequest(_message.Message):
    __slots__ = ("evaluation_id", "class_name", "kind", "predicted_class", "page_size", "page_token", "include_previews", "thumbnail_size")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CLASS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_SIZE_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    class_name: str
    kind: _evaluation_pb2.CaseErrorKind
    predicted_class: str
    page_size: int
    page_token: str
    include_previews: bool
    thumbnail_size: int
    def __init__(self, evaluation_id: _Optional[str] = ..., class_name: _Optional[str] = ..., kind: _Optional[_Union[_evaluation_pb2.CaseErrorKind, str]] = ..., predicted_class: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_previews: _Optional[bool] = ..., thumbnail_size: _Optional[int] = ...) -> None: ...

class ListEvaluationCasesResponse(_message.Message):
    __slots__ = ("cases", "next_page_token", "total_size")
    CASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[_evaluation_pb2.CaseResult]
    next_page_token: str
    total_size: int
    def __init__(self, cases: _Optional[_Iterable[_Union[_evaluation_pb2.CaseResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListLabelErrorsRequest(_message.Message):
    __slots__ = ("evaluation_id", "page_size", "page_token", "include_previews", "thumbnail_size")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_SIZE_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    page_size: int
    page_token: str
    include_previews: bool
    thumbnail_size: int
    def __init__(self, evaluation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_previews: _Optional[bool] = ..., thumbnail_size: _Optional[int] = ...) -> None: ...

class ListLabelErrorsResponse(_message.Message):
    __slots__ = ("label_errors", "next_page_token", "total_size", "method")
    LABEL_ERRORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    label_errors: _containers.RepeatedCompositeFieldContainer[_evaluation_pb2.LabelError]
    next_page_token: str
    total_size: int
    method: str
    def __init__(self, label_errors: _Optional[_Iterable[_Union[_evaluation_pb2.LabelError, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ..., method: _Optional[str] = ...) -> None: ...
