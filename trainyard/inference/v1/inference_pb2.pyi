from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageInput(_message.Message):
    __slots__ = ("image", "case", "name")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    case: CaseRef
    name: str
    def __init__(self, image: _Optional[bytes] = ..., case: _Optional[_Union[CaseRef, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class CaseRef(_message.Message):
    __slots__ = ("dataset_version_id", "case_id")
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_version_id: str
    case_id: str
    def __init__(self, dataset_version_id: _Optional[str] = ..., case_id: _Optional[str] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("class_name", "class_index", "score", "box", "mask_png")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    MASK_PNG_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    class_index: int
    score: float
    box: _containers.RepeatedScalarFieldContainer[float]
    mask_png: bytes
    def __init__(self, class_name: _Optional[str] = ..., class_index: _Optional[int] = ..., score: _Optional[float] = ..., box: _Optional[_Iterable[float]] = ..., mask_png: _Optional[bytes] = ...) -> None: ...

class ClassScore(_message.Message):
    __slots__ = ("class_name", "class_index", "score")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    class_index: int
    score: float
    def __init__(self, class_name: _Optional[str] = ..., class_index: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("name", "width", "height", "classes", "detections", "class_mask_png", "class_fractions", "drawn_jpeg")
    class ClassFractionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASS_MASK_PNG_FIELD_NUMBER: _ClassVar[int]
    CLASS_FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    DRAWN_JPEG_FIELD_NUMBER: _ClassVar[int]
    name: str
    width: int
    height: int
    classes: _containers.RepeatedCompositeFieldContainer[ClassScore]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    class_mask_png: bytes
    class_fractions: _containers.ScalarMap[str, float]
    drawn_jpeg: bytes
    def __init__(self, name: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., classes: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., class_mask_png: _Optional[bytes] = ..., class_fractions: _Optional[_Mapping[str, float]] = ..., drawn_jpeg: _Optional[bytes] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_id", "task_type", "class_names", "input_size", "mean", "std", "threshold", "onnx_sha256")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ONNX_SHA256_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    task_type: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    input_size: int
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    threshold: float
    onnx_sha256: str
    def __init__(self, model_id: _Optional[str] = ..., task_type: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., input_size: _Optional[int] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., threshold: _Optional[float] = ..., onnx_sha256: _Optional[str] = ...) -> None: ...
