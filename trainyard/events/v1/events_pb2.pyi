import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from trainyard.common.v1 import common_pb2 as _common_pb2
from trainyard.training.v1 import evaluation_pb2 as _evaluation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelSpec(_message.Message):
    __slots__ = ("model_id", "library", "architecture", "weights", "mean", "std", "pretrained_num_classes", "backbone_weights", "weights_class_names")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    library: str
    architecture: str
    weights: _common_pb2.ObjectRef
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    pretrained_num_classes: int
    backbone_weights: _common_pb2.ObjectRef
    weights_class_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_id: _Optional[str] = ..., library: _Optional[str] = ..., architecture: _Optional[str] = ..., weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., pretrained_num_classes: _Optional[int] = ..., backbone_weights: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., weights_class_names: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasetSpec(_message.Message):
    __slots__ = ("dataset_id", "version_id", "manifest", "class_names")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    version_id: str
    manifest: _common_pb2.ObjectRef
    class_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dataset_id: _Optional[str] = ..., version_id: _Optional[str] = ..., manifest: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., class_names: _Optional[_Iterable[str]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("task_id", "project", "task_type", "model", "dataset", "hyperparameters", "transfer_strategy", "output_bucket", "output_prefix", "attempt_offset", "resources", "assignment", "evaluation")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BUCKET_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    project: str
    task_type: _common_pb2.TaskType
    model: ModelSpec
    dataset: DatasetSpec
    hyperparameters: _common_pb2.Hyperparameters
    transfer_strategy: _common_pb2.TransferStrategy
    output_bucket: str
    output_prefix: str
    attempt_offset: int
    resources: _common_pb2.ComputeResources
    assignment: NodeAssignment
    evaluation: EvaluationSpec
    def __init__(self, task_id: _Optional[str] = ..., project: _Optional[str] = ..., task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., model: _Optional[_Union[ModelSpec, _Mapping]] = ..., dataset: _Optional[_Union[DatasetSpec, _Mapping]] = ..., hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., transfer_strategy: _Optional[_Union[_common_pb2.TransferStrategy, str]] = ..., output_bucket: _Optional[str] = ..., output_prefix: _Optional[str] = ..., attempt_offset: _Optional[int] = ..., resources: _Optional[_Union[_common_pb2.ComputeResources, _Mapping]] = ..., assignment: _Optional[_Union[NodeAssignment, _Mapping]] = ..., evaluation: _Optional[_Union[EvaluationSpec, _Mapping]] = ...) -> None: ...

class EvaluationSpec(_message.Message):
    __slots__ = ("splits", "trained_on", "threshold")
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    TRAINED_ON_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    splits: _containers.RepeatedScalarFieldContainer[_common_pb2.Split]
    trained_on: DatasetSpec
    threshold: float
    def __init__(self, splits: _Optional[_Iterable[_Union[_common_pb2.Split, str]]] = ..., trained_on: _Optional[_Union[DatasetSpec, _Mapping]] = ..., threshold: _Optional[float] = ...) -> None: ...

class NodeAssignment(_message.Message):
    __slots__ = ("node_rank", "nodes", "master_addr", "master_port", "run_id", "attempt")
    NODE_RANK_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADDR_FIELD_NUMBER: _ClassVar[int]
    MASTER_PORT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    node_rank: int
    nodes: int
    master_addr: str
    master_port: int
    run_id: str
    attempt: int
    def __init__(self, node_rank: _Optional[int] = ..., nodes: _Optional[int] = ..., master_addr: _Optional[str] = ..., master_port: _Optional[int] = ..., run_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class TrainerEvent(_message.Message):
    __slots__ = ("task_id", "attempt", "trainer_node", "time", "started", "progress", "epoch_metrics", "log", "succeeded", "failed", "cancelled", "heartbeat")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TRAINER_NODE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_METRICS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    trainer_node: str
    time: _timestamp_pb2.Timestamp
    started: JobStarted
    progress: JobProgress
    epoch_metrics: JobEpochMetrics
    log: str
    succeeded: JobSucceeded
    failed: JobFailed
    cancelled: JobCancelled
    heartbeat: JobHeartbeat
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., trainer_node: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[JobStarted, _Mapping]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., epoch_metrics: _Optional[_Union[JobEpochMetrics, _Mapping]] = ..., log: _Optional[str] = ..., succeeded: _Optional[_Union[JobSucceeded, _Mapping]] = ..., failed: _Optional[_Union[JobFailed, _Mapping]] = ..., cancelled: _Optional[_Union[JobCancelled, _Mapping]] = ..., heartbeat: _Optional[_Union[JobHeartbeat, _Mapping]] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("resumed_from_epoch", "device")
    RESUMED_FROM_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    resumed_from_epoch: int
    device: str
    def __init__(self, resumed_from_epoch: _Optional[int] = ..., device: _Optional[str] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("epoch", "total_epochs", "step", "total_steps", "images_per_second", "eta_seconds")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    total_epochs: int
    step: int
    total_steps: int
    images_per_second: float
    eta_seconds: float
    def __init__(self, epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., images_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class JobEpochMetrics(_message.Message):
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

class JobArtifact(_message.Message):
    __slots__ = ("name", "object")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    name: str
    object: _common_pb2.ObjectRef
    def __init__(self, name: _Optional[str] = ..., object: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ...) -> None: ...

class JobSucceeded(_message.Message):
    __slots__ = ("metrics", "artifacts", "evaluation")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.ScalarMap[str, float]
    artifacts: _containers.RepeatedCompositeFieldContainer[JobArtifact]
    evaluation: _evaluation_pb2.EvaluationSummary
    def __init__(self, metrics: _Optional[_Mapping[str, float]] = ..., artifacts: _Optional[_Iterable[_Union[JobArtifact, _Mapping]]] = ..., evaluation: _Optional[_Union[_evaluation_pb2.EvaluationSummary, _Mapping]] = ...) -> None: ...

class JobFailed(_message.Message):
    __slots__ = ("reason", "retryable")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    retryable: bool
    def __init__(self, reason: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class JobCancelled(_message.Message):
    __slots__ = ("epoch",)
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class JobHeartbeat(_message.Message):
    __slots__ = ("epoch",)
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class CancelJob(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...
