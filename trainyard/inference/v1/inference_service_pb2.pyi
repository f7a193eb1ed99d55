from trainyard.inference.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("model_id", "images", "threshold", "top_k", "draw")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    DRAW_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    images: _containers.RepeatedCompositeFieldContainer[_inference_pb2.ImageInput]
    threshold: float
    top_k: int
    draw: bool
    def __init__(self, model_id: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_inference_pb2.ImageInput, _Mapping]]] = ..., threshold: _Optional[float] = ..., top_k: _Optional[int] = ..., draw: _Optional[bool] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("predictions", "model")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[_inference_pb2.Prediction]
    model: _inference_pb2.ModelInfo
    def __init__(self, predictions: _Optional[_Iterable[_Union[_inference_pb2.Prediction, _Mapping]]] = ..., model: _Optional[_Union[_inference_pb2.ModelInfo, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _inference_pb2.ModelInfo
    def __init__(self, model: _Optional[_Union[_inference_pb2.ModelInfo, _Mapping]] = ...) -> None: ...
