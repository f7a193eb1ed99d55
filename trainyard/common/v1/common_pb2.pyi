from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_CLASSIFICATION: _ClassVar[TaskType]
    TASK_TYPE_DETECTION: _ClassVar[TaskType]
    TASK_TYPE_SEGMENTATION: _ClassVar[TaskType]
    TASK_TYPE_INSTANCE_SEGMENTATION: _ClassVar[TaskType]

class AnnotationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANNOTATION_TYPE_UNSPECIFIED: _ClassVar[AnnotationType]
    ANNOTATION_TYPE_LABEL: _ClassVar[AnnotationType]
    ANNOTATION_TYPE_BOX: _ClassVar[AnnotationType]
    ANNOTATION_TYPE_MASK: _ClassVar[AnnotationType]
    ANNOTATION_TYPE_POLYGON: _ClassVar[AnnotationType]

class Split(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPLIT_UNSPECIFIED: _ClassVar[Split]
    SPLIT_TRAIN: _ClassVar[Split]
    SPLIT_VAL: _ClassVar[Split]
    SPLIT_TEST: _ClassVar[Split]

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_UNSPECIFIED: _ClassVar[DataType]
    DATA_TYPE_NATURAL_PHOTO: _ClassVar[DataType]
    DATA_TYPE_MEDICAL: _ClassVar[DataType]
    DATA_TYPE_DOCUMENT: _ClassVar[DataType]
    DATA_TYPE_AERIAL: _ClassVar[DataType]
    DATA_TYPE_MICROSCOPY: _ClassVar[DataType]
    DATA_TYPE_INDUSTRIAL: _ClassVar[DataType]
    DATA_TYPE_OTHER: _ClassVar[DataType]

class TrainingPreference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_PREFERENCE_UNSPECIFIED: _ClassVar[TrainingPreference]
    TRAINING_PREFERENCE_FASTEST: _ClassVar[TrainingPreference]
    TRAINING_PREFERENCE_BALANCED: _ClassVar[TrainingPreference]
    TRAINING_PREFERENCE_MOST_ACCURATE: _ClassVar[TrainingPreference]
    TRAINING_PREFERENCE_SMALLEST: _ClassVar[TrainingPreference]

class TransferStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_STRATEGY_UNSPECIFIED: _ClassVar[TransferStrategy]
    TRANSFER_STRATEGY_FINE_TUNE_ALL: _ClassVar[TransferStrategy]
    TRANSFER_STRATEGY_LINEAR_PROBE: _ClassVar[TransferStrategy]
    TRANSFER_STRATEGY_GRADUAL_UNFREEZE: _ClassVar[TransferStrategy]
    TRANSFER_STRATEGY_FROM_SCRATCH: _ClassVar[TransferStrategy]
    TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE: _ClassVar[TransferStrategy]

class Optimizer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZER_UNSPECIFIED: _ClassVar[Optimizer]
    OPTIMIZER_SGD: _ClassVar[Optimizer]
    OPTIMIZER_ADAM: _ClassVar[Optimizer]
    OPTIMIZER_ADAMW: _ClassVar[Optimizer]

class LrSchedule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LR_SCHEDULE_UNSPECIFIED: _ClassVar[LrSchedule]
    LR_SCHEDULE_COSINE: _ClassVar[LrSchedule]
    LR_SCHEDULE_STEP: _ClassVar[LrSchedule]
    LR_SCHEDULE_ONE_CYCLE: _ClassVar[LrSchedule]
    LR_SCHEDULE_CONSTANT: _ClassVar[LrSchedule]

class ClassWeighting(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLASS_WEIGHTING_UNSPECIFIED: _ClassVar[ClassWeighting]
    CLASS_WEIGHTING_NONE: _ClassVar[ClassWeighting]
    CLASS_WEIGHTING_INVERSE_FREQUENCY: _ClassVar[ClassWeighting]
    CLASS_WEIGHTING_SQRT_INVERSE_FREQUENCY: _ClassVar[ClassWeighting]
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_CLASSIFICATION: TaskType
TASK_TYPE_DETECTION: TaskType
TASK_TYPE_SEGMENTATION: TaskType
TASK_TYPE_INSTANCE_SEGMENTATION: TaskType
ANNOTATION_TYPE_UNSPECIFIED: AnnotationType
ANNOTATION_TYPE_LABEL: AnnotationType
ANNOTATION_TYPE_BOX: AnnotationType
ANNOTATION_TYPE_MASK: AnnotationType
ANNOTATION_TYPE_POLYGON: AnnotationType
SPLIT_UNSPECIFIED: Split
SPLIT_TRAIN: Split
SPLIT_VAL: Split
SPLIT_TEST: Split
DATA_TYPE_UNSPECIFIED: DataType
DATA_TYPE_NATURAL_PHOTO: DataType
DATA_TYPE_MEDICAL: DataType
DATA_TYPE_DOCUMENT: DataType
DATA_TYPE_AERIAL: DataType
DATA_TYPE_MICROSCOPY: DataType
DATA_TYPE_INDUSTRIAL: DataType
DATA_TYPE_OTHER: DataType
TRAINING_PREFERENCE_UNSPECIFIED: TrainingPreference
TRAINING_PREFERENCE_FASTEST: TrainingPreference
TRAINING_PREFERENCE_BALANCED: TrainingPreference
TRAINING_PREFERENCE_MOST_ACCURATE: TrainingPreference
TRAINING_PREFERENCE_SMALLEST: TrainingPreference
TRANSFER_STRATEGY_UNSPECIFIED: TransferStrategy
TRANSFER_STRATEGY_FINE_TUNE_ALL: TransferStrategy
TRANSFER_STRATEGY_LINEAR_PROBE: TransferStrategy
TRANSFER_STRATEGY_GRADUAL_UNFREEZE: TransferStrategy
TRANSFER_STRATEGY_FROM_SCRATCH: TransferStrategy
TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE: TransferStrategy
OPTIMIZER_UNSPECIFIED: Optimizer
OPTIMIZER_SGD: Optimizer
OPTIMIZER_ADAM: Optimizer
OPTIMIZER_ADAMW: Optimizer
LR_SCHEDULE_UNSPECIFIED: LrSchedule
LR_SCHEDULE_COSINE: LrSchedule
LR_SCHEDULE_STEP: LrSchedule
LR_SCHEDULE_ONE_CYCLE: LrSchedule
LR_SCHEDULE_CONSTANT: LrSchedule
CLASS_WEIGHTING_UNSPECIFIED: ClassWeighting
CLASS_WEIGHTING_NONE: ClassWeighting
CLASS_WEIGHTING_INVERSE_FREQUENCY: ClassWeighting
CLASS_WEIGHTING_SQRT_INVERSE_FREQUENCY: ClassWeighting

class Hyperparameters(_message.Message):
    __slots__ = ("epochs", "batch_size", "learning_rate", "backbone_lr_multiplier", "weight_decay", "image_size", "optimizer", "seed", "warmup_epochs", "label_smoothing", "lr_schedule", "lr_step_epochs", "lr_step_gamma", "augmentation", "class_weighting", "early_stopping_patience", "early_stopping_metric", "image_width", "time_budget_seconds")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_LR_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LABEL_SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    LR_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    LR_STEP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LR_STEP_GAMMA_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    CLASS_WEIGHTING_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_PATIENCE_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_METRIC_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    batch_size: int
    learning_rate: float
    backbone_lr_multiplier: float
    weight_decay: float
    image_size: int
    optimizer: Optimizer
    seed: int
    warmup_epochs: int
    label_smoothing: float
    lr_schedule: LrSchedule
    lr_step_epochs: int
    lr_step_gamma: float
    augmentation: str
    class_weighting: ClassWeighting
    early_stopping_patience: int
    early_stopping_metric: str
    image_width: int
    time_budget_seconds: int
    def __init__(self, epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., backbone_lr_multiplier: _Optional[float] = ..., weight_decay: _Optional[float] = ..., image_size: _Optional[int] = ..., optimizer: _Optional[_Union[Optimizer, str]] = ..., seed: _Optional[int] = ..., warmup_epochs: _Optional[int] = ..., label_smoothing: _Optional[float] = ..., lr_schedule: _Optional[_Union[LrSchedule, str]] = ..., lr_step_epochs: _Optional[int] = ..., lr_step_gamma: _Optional[float] = ..., augmentation: _Optional[str] = ..., class_weighting: _Optional[_Union[ClassWeighting, str]] = ..., early_stopping_patience: _Optional[int] = ..., early_stopping_metric: _Optional[str] = ..., image_width: _Optional[int] = ..., time_budget_seconds: _Optional[int] = ...) -> None: ...

class ObjectRef(_message.Message):
    __slots__ = ("bucket", "key", "sha256", "size_bytes")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    sha256: str
    size_bytes: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "value", "dataset", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    dataset: str
    source: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., dataset: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class ComputeResources(_message.Message):
    __slots__ = ("processes_per_node", "nodes")
    PROCESSES_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    processes_per_node: int
    nodes: int
    def __init__(self, processes_per_node: _Optional[int] = ..., nodes: _Optional[int] = ...) -> None: ...
