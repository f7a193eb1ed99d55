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

class EvaluationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_STATE_UNSPECIFIED: _ClassVar[EvaluationState]
    EVALUATION_STATE_QUEUED: _ClassVar[EvaluationState]
    EVALUATION_STATE_RUNNING: _ClassVar[EvaluationState]
    EVALUATION_STATE_SUCCEEDED: _ClassVar[EvaluationState]
    EVALUATION_STATE_FAILED: _ClassVar[EvaluationState]
    EVALUATION_STATE_CANCELLED: _ClassVar[EvaluationState]

class CaseErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_ERROR_KIND_UNSPECIFIED: _ClassVar[CaseErrorKind]
    CASE_ERROR_KIND_CORRECT: _ClassVar[CaseErrorKind]
    CASE_ERROR_KIND_MISCLASSIFIED: _ClassVar[CaseErrorKind]
    CASE_ERROR_KIND_FALSE_POSITIVE: _ClassVar[CaseErrorKind]
    CASE_ERROR_KIND_MISSED_OBJECT: _ClassVar[CaseErrorKind]
    CASE_ERROR_KIND_LOW_IOU: _ClassVar[CaseErrorKind]
EVALUATION_STATE_UNSPECIFIED: EvaluationState
EVALUATION_STATE_QUEUED: EvaluationState
EVALUATION_STATE_RUNNING: EvaluationState
EVALUATION_STATE_SUCCEEDED: EvaluationState
EVALUATION_STATE_FAILED: EvaluationState
EVALUATION_STATE_CANCELLED: EvaluationState
CASE_ERROR_KIND_UNSPECIFIED: CaseErrorKind
CASE_ERROR_KIND_CORRECT: CaseErrorKind
CASE_ERROR_KIND_MISCLASSIFIED: CaseErrorKind
CASE_ERROR_KIND_FALSE_POSITIVE: CaseErrorKind
CASE_ERROR_KIND_MISSED_OBJECT: CaseErrorKind
CASE_ERROR_KIND_LOW_IOU: CaseErrorKind

class ClassMetrics(_message.Message):
    __slots__ = ("name", "support", "precision", "recall", "f1", "ap", "mask_ap", "iou")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    AP_FIELD_NUMBER: _ClassVar[int]
    MASK_AP_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    name: str
    support: int
    precision: float
    recall: float
    f1: float
    ap: float
    mask_ap: float
    iou: float
    def __init__(self, name: _Optional[str] = ..., support: _Optional[int] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., ap: _Optional[float] = ..., mask_ap: _Optional[float] = ..., iou: _Optional[float] = ...) -> None: ...

class ConfusionMatrix(_message.Message):
    __slots__ = ("row_labels", "column_labels", "counts", "unit")
    ROW_LABELS_FIELD_NUMBER: _ClassVar[int]
    COLUMN_LABELS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    row_labels: _containers.RepeatedScalarFieldContainer[str]
    column_labels: _containers.RepeatedScalarFieldContainer[str]
    counts: _containers.RepeatedScalarFieldContainer[int]
    unit: str
    def __init__(self, row_labels: _Optional[_Iterable[str]] = ..., column_labels: _Optional[_Iterable[str]] = ..., counts: _Optional[_Iterable[int]] = ..., unit: _Optional[str] = ...) -> None: ...

class ThresholdRow(_message.Message):
    __slots__ = ("threshold", "precision", "recall", "f1")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    threshold: float
    precision: float
    recall: float
    f1: float
    def __init__(self, threshold: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ...) -> None: ...

class EvaluationSummary(_message.Message):
    __slots__ = ("split", "split_note", "headline_metric", "headline_value", "metrics", "classes", "confusion_matrix", "thresholds", "default_threshold", "case_count", "error_case_count", "label_error_count", "label_error_method", "in_sample_case_count")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_NOTE_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_METRIC_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_MATRIX_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_ERROR_METHOD_FIELD_NUMBER: _ClassVar[int]
    IN_SAMPLE_CASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    split: _common_pb2.Split
    split_note: str
    headline_metric: str
    headline_value: float
    metrics: _containers.ScalarMap[str, float]
    classes: _containers.RepeatedCompositeFieldContainer[ClassMetrics]
    confusion_matrix: ConfusionMatrix
    thresholds: _containers.RepeatedCompositeFieldContainer[ThresholdRow]
    default_threshold: float
    case_count: int
    error_case_count: int
    label_error_count: int
    label_error_method: str
    in_sample_case_count: int
    def __init__(self, split: _Optional[_Union[_common_pb2.Split, str]] = ..., split_note: _Optional[str] = ..., headline_metric: _Optional[str] = ..., headline_value: _Optional[float] = ..., metrics: _Optional[_Mapping[str, float]] = ..., classes: _Optional[_Iterable[_Union[ClassMetrics, _Mapping]]] = ..., confusion_matrix: _Optional[_Union[ConfusionMatrix, _Mapping]] = ..., thresholds: _Optional[_Iterable[_Union[ThresholdRow, _Mapping]]] = ..., default_threshold: _Optional[float] = ..., case_count: _Optional[int] = ..., error_case_count: _Optional[int] = ..., label_error_count: _Optional[int] = ..., label_error_method: _Optional[str] = ..., in_sample_case_count: _Optional[int] = ...) -> None: ...

class EvaluationProgress(_message.Message):
    __slots__ = ("step", "total_steps", "images_per_second", "eta_seconds", "fraction")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    images_per_second: float
    eta_seconds: float
    fraction: float
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., images_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., fraction: _Optional[float] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("id", "project", "model_id", "task_id", "dataset_id", "dataset_version_id", "splits", "state", "failure_reason", "progress", "summary", "automatic", "trainer_node", "create_time", "start_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_FIELD_NUMBER: _ClassVar[int]
    TRAINER_NODE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    project: str
    model_id: str
    task_id: str
    dataset_id: str
    dataset_version_id: str
    splits: _containers.RepeatedScalarFieldContainer[_common_pb2.Split]
    state: EvaluationState
    failure_reason: str
    progress: EvaluationProgress
    summary: EvaluationSummary
    automatic: bool
    trainer_node: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project: _Optional[str] = ..., model_id: _Optional[str] = ..., task_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_version_id: _Optional[str] = ..., splits: _Optional[_Iterable[_Union[_common_pb2.Split, str]]] = ..., state: _Optional[_Union[EvaluationState, str]] = ..., failure_reason: _Optional[str] = ..., progress: _Optional[_Union[EvaluationProgress, _Mapping]] = ..., summary: _Optional[_Union[EvaluationSummary, _Mapping]] = ..., automatic: _Optional[bool] = ..., trainer_node: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PredictedObject(_message.Message):
    __slots__ = ("class_name", "class_index", "score", "box")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    class_index: int
    score: float
    box: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, class_name: _Optional[str] = ..., class_index: _Optional[int] = ..., score: _Optional[float] = ..., box: _Optional[_Iterable[float]] = ...) -> None: ...

class CaseResult(_message.Message):
    __slots__ = ("case_id", "source_path", "split", "true_classes", "predictions", "kinds", "error_score", "summary", "iou", "predicted_classes", "preview_jpeg")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRUE_CLASSES_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_SCORE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CLASSES_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_JPEG_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    source_path: str
    split: _common_pb2.Split
    true_classes: _containers.RepeatedScalarFieldContainer[str]
    predictions: _containers.RepeatedCompositeFieldContainer[PredictedObject]
    kinds: _containers.RepeatedScalarFieldContainer[CaseErrorKind]
    error_score: float
    summary: str
    iou: float
    predicted_classes: _containers.RepeatedScalarFieldContainer[str]
    preview_jpeg: bytes
    def __init__(self, case_id: _Optional[str] = ..., source_path: _Optional[str] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ..., true_classes: _Optional[_Iterable[str]] = ..., predictions: _Optional[_Iterable[_Union[PredictedObject, _Mapping]]] = ..., kinds: _Optional[_Iterable[_Union[CaseErrorKind, str]]] = ..., error_score: _Optional[float] = ..., summary: _Optional[str] = ..., iou: _Optional[float] = ..., predicted_classes: _Optional[_Iterable[str]] = ..., preview_jpeg: _Optional[bytes] = ...) -> None: ...

class LabelError(_message.Message):
    __slots__ = ("case_id", "source_path", "kind", "given_label", "suggested_label", "score", "evidence", "box", "preview_jpeg")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GIVEN_LABEL_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_JPEG_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    source_path: str
    kind: str
    given_label: str
    suggested_label: str
    score: float
    evidence: str
    box: _containers.RepeatedScalarFieldContainer[float]
    preview_jpeg: bytes
    def __init__(self, case_id: _Optional[str] = ..., source_path: _Optional[str] = ..., kind: _Optional[str] = ..., given_label: _Optional[str] = ..., suggested_label: _Optional[str] = ..., score: _Optional[float] = ..., evidence: _Optional[str] = ..., box: _Optional[_Iterable[float]] = ..., preview_jpeg: _Optional[bytes] = ...) -> None: ...
