from trainyard.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Suggestion(_message.Message):
    __slots__ = ("model_id", "pretrain_dataset", "transfer_strategy", "hyperparameters", "score", "rationale", "factors", "expected_seconds_per_epoch", "expected_quality_low", "expected_quality_high", "expected_training_seconds", "throughput_source", "quality_metric", "outcomes_used", "expected_latency_ms", "rank", "data_type", "preference", "dataset_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_DATASET_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SECONDS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_QUALITY_LOW_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_QUALITY_HIGH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_TRAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_METRIC_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_USED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    pretrain_dataset: str
    transfer_strategy: _common_pb2.TransferStrategy
    hyperparameters: _common_pb2.Hyperparameters
    score: float
    rationale: str
    factors: _containers.RepeatedScalarFieldContainer[str]
    expected_seconds_per_epoch: float
    expected_quality_low: float
    expected_quality_high: float
    expected_training_seconds: float
    throughput_source: str
    quality_metric: str
    outcomes_used: int
    expected_latency_ms: float
    rank: int
    data_type: _common_pb2.DataType
    preference: _common_pb2.TrainingPreference
    dataset_id: str
    def __init__(self, model_id: _Optional[str] = ..., pretrain_dataset: _Optional[str] = ..., transfer_strategy: _Optional[_Union[_common_pb2.TransferStrategy, str]] = ..., hyperparameters: _Optional[_Union[_common_pb2.Hyperparameters, _Mapping]] = ..., score: _Optional[float] = ..., rationale: _Optional[str] = ..., factors: _Optional[_Iterable[str]] = ..., expected_seconds_per_epoch: _Optional[float] = ..., expected_quality_low: _Optional[float] = ..., expected_quality_high: _Optional[float] = ..., expected_training_seconds: _Optional[float] = ..., throughput_source: _Optional[str] = ..., quality_metric: _Optional[str] = ..., outcomes_used: _Optional[int] = ..., expected_latency_ms: _Optional[float] = ..., rank: _Optional[int] = ..., data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., preference: _Optional[_Union[_common_pb2.TrainingPreference, str]] = ..., dataset_id: _Optional[str] = ...) -> None: ...
