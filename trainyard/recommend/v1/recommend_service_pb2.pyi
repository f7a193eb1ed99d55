from trainyard.common.v1 import common_pb2 as _common_pb2
from trainyard.recommend.v1 import recommend_pb2 as _recommend_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecommendRequest(_message.Message):
    __slots__ = ("task_type", "dataset_id", "data_type", "preference", "max_params", "max_training_seconds", "device_class", "max_suggestions", "max_latency_ms")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_PARAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CLASS_FIELD_NUMBER: _ClassVar[int]
    MAX_SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    dataset_id: str
    data_type: _common_pb2.DataType
    preference: _common_pb2.TrainingPreference
    max_params: int
    max_training_seconds: float
    device_class: str
    max_suggestions: int
    max_latency_ms: float
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., dataset_id: _Optional[str] = ..., data_type: _Optional[_Union[_common_pb2.DataType, str]] = ..., preference: _Optional[_Union[_common_pb2.TrainingPreference, str]] = ..., max_params: _Optional[int] = ..., max_training_seconds: _Optional[float] = ..., device_class: _Optional[str] = ..., max_suggestions: _Optional[int] = ..., max_latency_ms: _Optional[float] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("suggestions", "dataset_factors", "outcomes_considered")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FACTORS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_CONSIDERED_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[_recommend_pb2.Suggestion]
    dataset_factors: _containers.RepeatedScalarFieldContainer[str]
    outcomes_considered: int
    def __init__(self, suggestions: _Optional[_Iterable[_Union[_recommend_pb2.Suggestion, _Mapping]]] = ..., dataset_factors: _Optional[_Iterable[str]] = ..., outcomes_considered: _Optional[int] = ...) -> None: ...
