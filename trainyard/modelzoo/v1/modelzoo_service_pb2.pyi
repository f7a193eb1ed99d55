from trainyard.common.v1 import common_pb2 as _common_pb2
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
    __slots__ = ("task_type", "family", "pretrain_dataset", "max_params", "max_gflops", "weights_in_store", "query", "page_size", "page_token")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_DATASET_FIELD_NUMBER: _ClassVar[int]
    MAX_PARAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_GFLOPS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_IN_STORE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    family: str
    pretrain_dataset: str
    max_params: int
    max_gflops: float
    weights_in_store: bool
    query: str
    page_size: int
    page_token: str
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., family: _Optional[str] = ..., pretrain_dataset: _Optional[str] = ..., max_params: _Optional[int] = ..., max_gflops: _Optional[float] = ..., weights_in_store: _Optional[bool] = ..., query: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ImportWeightsResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _modelzoo_pb2.Model
    def __init__(self, model: _Optional[_Union[_modelzoo_pb2.Model, _Mapping]] = ...) -> None: ...
