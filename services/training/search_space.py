"""Hyperparameter schema and search specs: which fields a search may vary, their ranges and defaults,
validation of a HyperparameterSearch (field violations named "search.<field>") and its resolution
(default space per model, default budget and objective).

Plain code without Optuna; the valid range of every value is checked by hyperparams.violations, so
the ranges live in one place.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from kernel import contract, recipes
from services.training import hyperparams
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2
from trainyard.training.v1 import training_pb2

C = common_pb2
T = training_pb2
INT, FLOAT, CHOICE = T.HYPERPARAMETER_KIND_INT, T.HYPERPARAMETER_KIND_FLOAT, T.HYPERPARAMETER_KIND_CHOICE
MAX_TRIALS = 1000
DEFAULT_MAX_TRIALS = 10
MAX_PARALLELISM = 64
MAX_DURATION_S = 7 * 24 * 3600
MAX_GRID = 10_000
MAX_CHOICES = 100
DEFAULT_STARTUP_TRIALS = 2
DEFAULT_REDUCTION_FACTOR = 3
PRIMARY_METRIC = {task_type: contract.PRIMARY_METRIC[name] for task_type, name in contract.TASK_NAMES.items()}
# Families whose published recipes train with much smaller learning rates (transformers).
LOW_LR_FAMILIES = ("vit", "deit", "swin", "beit", "eva", "convnext", "maxvit", "cait", "xcit", "levit")


@dataclass(frozen=True)
class Param:
    name: str
    kind: int
    description: str
    minimum: float = 0.0
    maximum: float = 0.0
    minimum_exclusive: bool = False
    enum: object | None = None  # the proto enum wrapper of an enum field
    prefix: str = ""  # its value prefix, e.g. "OPTIMIZER_"
    choices: tuple[str, ...] = ()
    searchable: bool = True
    # generic default search range: (low, high, log) or choices
    search: tuple[float, float, bool] | None = None
    search_choices: tuple[str, ...] = ()

    def all_choices(self) -> tuple[str, ...]:
        if self.enum is not None:
            return tuple(
                n.removeprefix(self.prefix).lower() for n in self.enum.keys() if not n.endswith("_UNSPECIFIED")
            )
        return self.choices

    def to_text(self, value: int) -> str:
        """An enum value -> its short name ("sgd")."""
        return self.enum.Name(value).removeprefix(self.prefix).lower() if self.enum is not None else str(value)


def _enum(name: str, enum, prefix: str, description: str, search_choices: tuple[str, ...] = ()) -> Param:
    return Param(name, CHOICE, description, enum=enum, prefix=prefix, search_choices=search_choices)


PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("epochs", INT, "Passes over the training split; a search's trials all train this many.", 1, 1000,
              searchable=False),
        Param("batch_size", INT, "Images per optimisation step.", 1, 4096, search_choices=("16", "32", "64")),
        Param("learning_rate", FLOAT, "Learning rate of the head.", 0, 10, minimum_exclusive=True,
              search=(1e-4, 1e-2, True)),
        Param("backbone_lr_multiplier", FLOAT, "Learning rate of the backbone as a multiple of learning_rate.", 0, 10,
              search=(0.01, 1.0, True)),
        Param("weight_decay", FLOAT, "L2 weight decay.", 0, 1, search=(1e-6, 1e-2, True)),
        Param("image_size", INT, "Square input side in pixels (segmentation: the height).", 16, 2048,
              search_choices=("160", "224", "256")),
        Param("image_width", INT, "Semantic segmentation: the width images are resized to (0: square).", 0, 2048,
              searchable=False),
        Param("time_budget_seconds", INT, "Train for at most this many seconds, with the best epoch's model "
              "(0: no limit).", 0, hyperparams.MAX_TIME_BUDGET_S, searchable=False),
        _enum("optimizer", C.Optimizer, "OPTIMIZER_", "Optimisation algorithm.", ("sgd", "adamw")),
        Param("seed", INT, "Random seed.", 0, 2**62, searchable=False),
        Param("warmup_epochs", INT, "Epochs of linear warm-up; at most epochs.", 0, 1000, search=(0, 1, False)),
        Param("label_smoothing", FLOAT, "Label smoothing for classification; below 1.", 0, 1, search=(0.0, 0.2, False)),
        _enum("lr_schedule", C.LrSchedule, "LR_SCHEDULE_", "Learning-rate schedule after the warm-up.",
              ("cosine", "one_cycle", "constant")),
        Param("lr_step_epochs", INT, "Step schedule: epochs between decays (0: a third of the epochs).", 0, 1000,
              search=(1, 10, False)),
        Param("lr_step_gamma", FLOAT, "Step schedule: multiplier at each decay.", 0, 1, minimum_exclusive=True,
              search=(0.05, 0.5, True)),
        Param("augmentation", CHOICE, "Augmentation preset.", choices=contract.AUGMENTATION_PRESETS,
              search_choices=("light", "standard", "strong")),
        _enum("class_weighting", C.ClassWeighting, "CLASS_WEIGHTING_", "Loss weighting per class.",
              ("none", "inverse_frequency", "sqrt_inverse_frequency")),
        Param("early_stopping_patience", INT, "Stop after this many epochs without improvement (0: never).", 0, 1000,
              searchable=False),
        Param("early_stopping_metric", CHOICE, "Metric early stopping watches; the task's primary metric when empty.",
              searchable=False),
    )
}  # fmt: skip
# Fields where 0 means "the default": a range bound there must be above 0.
ZERO_IS_DEFAULT = frozenset({"batch_size", "learning_rate", "image_size", "lr_step_gamma"})


def objective_metrics(task_type: int) -> tuple[str, ...]:
    return hyperparams.TASK_METRICS.get(task_type, ())


def maximize(metric: str) -> bool:
    return not metric.endswith("loss")


def default_space(task_type: int, model: modelzoo_pb2.Model | None) -> list[T.SearchParameter]:
    """The model's default search space: learning rate (lower for transformers and detectors), weight
    decay, and label smoothing for classification."""
    low, high = 1e-4, 1e-2
    family = (model.family if model is not None else "").lower()
    if any(family.startswith(f) for f in LOW_LR_FAMILIES):
        low, high = 1e-5, 1e-3
    elif task_type in (C.TASK_TYPE_DETECTION, C.TASK_TYPE_INSTANCE_SEGMENTATION):
        low, high = 1e-4, 5e-3
    space = [
        T.SearchParameter(name="learning_rate", low=low, high=high, log=True),
        T.SearchParameter(name="weight_decay", low=1e-6, high=1e-2, log=True),
    ]
    if task_type == C.TASK_TYPE_CLASSIFICATION:
        space.append(T.SearchParameter(name="label_smoothing", low=0.0, high=0.2))
    return space


def default_range(name: str, task_type: int, model: modelzoo_pb2.Model | None) -> T.SearchParameter:
    for p in default_space(task_type, model):
        if p.name == name:
            return p
    param = PARAMS[name]
    if param.search is not None:
        low, high, log = param.search
        return T.SearchParameter(name=name, low=low, high=high, log=log)
    return T.SearchParameter(name=name, choices=param.search_choices)


def schema(task_type: int, model: modelzoo_pb2.Model | None) -> list[T.HyperparameterSpec]:
    """One spec per Hyperparameters field, with defaults for the model when given (its recipe without a
    dataset, Model.default_hyperparameters; CreateTrainingTask with validate_only shows them for a dataset)."""
    recipe = model.default_hyperparameters if model is not None else C.Hyperparameters()
    default = hyperparams.resolve(recipe, model.default_input_size if model is not None else 0)
    if not default.HasField("early_stopping_patience"):
        default.early_stopping_patience = recipes.EARLY_STOPPING_PATIENCE
    in_space = {p.name for p in default_space(task_type, model)}
    out = []
    for name, param in PARAMS.items():
        spec = T.HyperparameterSpec(
            name=name,
            description=param.description,
            kind=param.kind,
            minimum=param.minimum,
            maximum=param.maximum,
            minimum_exclusive=param.minimum_exclusive,
            searchable=param.searchable,
        )
        value = getattr(default, name)
        if param.enum is not None:
            spec.choices.extend(param.all_choices())
            spec.default_choice = param.to_text(value) if value else spec.choices[0]
        elif param.kind == CHOICE:
            spec.choices.extend(param.all_choices() or objective_metrics(task_type))
            spec.default_choice = value or PRIMARY_METRIC.get(task_type, "")
        else:
            spec.default_number = float(value)
        if name == "label_smoothing" and task_type != C.TASK_TYPE_CLASSIFICATION:
            spec.searchable = False
        if name in in_space:
            spec.default_search.CopyFrom(default_range(name, task_type, model))
        out.append(spec)
    return out


# -- values ---------------------------------------------------------------------------------------


def parse_choice(param: Param, text: str) -> int | float | str:
    """A choice as its typed value; ValueError with the reason when it is not one."""
    if param.kind in (INT, FLOAT):
        try:
            value = float(text)
        except ValueError:
            kind = "an integer" if param.kind == INT else "a number"
            raise ValueError(
                f"{text!r} is not {kind}: {param.name} takes numbers as choices, or a range low:high"
            ) from None
    if param.kind == INT:
        if not value.is_integer():
            raise ValueError(f"{text!r} is not an integer")
        return int(value)
    if param.kind == FLOAT:
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    allowed = param.all_choices()
    if text not in allowed:
        raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
    return text


def apply(hp: common_pb2.Hyperparameters, params: dict[str, int | float | str]) -> common_pb2.Hyperparameters:
    """A copy of hp with the trial's values set."""
    out = common_pb2.Hyperparameters()
    out.CopyFrom(hp)
    for name, value in params.items():
        param = PARAMS[name]
        if param.enum is not None:
            setattr(out, name, param.enum.Value(param.prefix + str(value).upper()))
        elif param.kind == INT:
            setattr(out, name, int(value))
        elif param.kind == FLOAT:
            setattr(out, name, float(value))
        else:
            setattr(out, name, str(value))
    return out


def _value_violation(name: str, value: int | float | str, base: common_pb2.Hyperparameters) -> str | None:
    """Why `value` is not a valid `name` (with the task's other hyperparameters), or None."""
    param = PARAMS[name]
    if name in ZERO_IS_DEFAULT and isinstance(value, int | float) and value <= 0:
        return f"must be above 0, got {value:g}"
    try:
        hp = apply(base, {name: value})
    except (ValueError, TypeError) as exc:
        return str(exc)
    bad = hyperparams.violations(hp)
    reason = bad.get(f"hyperparameters.{name}")
    if reason is None and param.kind != CHOICE and name == "warmup_epochs" and int(value) > (base.epochs or 1):
        reason = f"must be at most the trials' epochs ({base.epochs}), got {value}"
    return reason


# -- validation -----------------------------------------------------------------------------------


def violations(
    search: T.HyperparameterSearch, task_type: int, hp: common_pb2.Hyperparameters, prefix: str = "search"
) -> dict[str, str]:
    """Every problem of a search spec (hp: the request's hyperparameters, before defaults)."""
    bad: dict[str, str] = {}
    base = hyperparams.resolve(hp)
    if search.method not in T.SearchMethod.values():
        bad[f"{prefix}.method"] = f"unknown search method {search.method}"
    if not 0 <= search.max_trials <= MAX_TRIALS:
        bad[f"{prefix}.max_trials"] = (
            f"must be in 1..{MAX_TRIALS} (0 for {DEFAULT_MAX_TRIALS}), got {search.max_trials}"
        )
    if not 0 <= search.parallelism <= MAX_PARALLELISM:
        bad[f"{prefix}.parallelism"] = f"must be in 1..{MAX_PARALLELISM} (0 for 1), got {search.parallelism}"
    if not 0 <= search.max_duration_seconds <= MAX_DURATION_S:
        bad[f"{prefix}.max_duration_seconds"] = (
            f"must be in 0..{MAX_DURATION_S} (0: no time budget), got {search.max_duration_seconds}"
        )
    known = objective_metrics(task_type)
    if search.objective_metric and known and search.objective_metric not in known:
        bad[f"{prefix}.objective_metric"] = (
            f"{search.objective_metric!r} is not a metric of this task type; one of {', '.join(known)}"
        )
    if search.direction not in T.ObjectiveDirection.values():
        bad[f"{prefix}.direction"] = f"unknown direction {search.direction}"
    pruning = search.pruning
    if pruning.method not in T.PruningMethod.values():
        bad[f"{prefix}.pruning.method"] = f"unknown pruning method {pruning.method}"
    if not 0 <= pruning.warmup_epochs < base.epochs:
        bad[f"{prefix}.pruning.warmup_epochs"] = (
            f"must be in 0..{base.epochs - 1} (below the trials' epochs), got {pruning.warmup_epochs}"
        )
    if not 0 <= pruning.startup_trials <= MAX_TRIALS:
        bad[f"{prefix}.pruning.startup_trials"] = f"must be in 0..{MAX_TRIALS}, got {pruning.startup_trials}"
    if not 0 <= pruning.min_epochs <= base.epochs:
        bad[f"{prefix}.pruning.min_epochs"] = (
            f"must be in 0..{base.epochs} (the trials' epochs), got {pruning.min_epochs}"
        )
    if pruning.reduction_factor and not 2 <= pruning.reduction_factor <= 10:
        bad[f"{prefix}.pruning.reduction_factor"] = (
            f"must be in 2..10 (0 for {DEFAULT_REDUCTION_FACTOR}), got {pruning.reduction_factor}"
        )
    seen: set[str] = set()
    grid = search.method == T.SEARCH_METHOD_GRID
    for i, p in enumerate(search.parameters):
        bad.update(_parameter_violations(p, f"{prefix}.parameters[{i}]", task_type, base, seen, grid))
    if grid and not search.parameters:
        bad[f"{prefix}.parameters"] = "a grid search needs its parameters, each with choices or a step"
    return bad


def _parameter_violations(
    p: T.SearchParameter, where: str, task_type: int, base: common_pb2.Hyperparameters, seen: set[str], grid: bool
) -> dict[str, str]:
    bad: dict[str, str] = {}
    param = PARAMS.get(p.name)
    if param is None:
        searchable = ", ".join(n for n, q in PARAMS.items() if q.searchable)
        return {f"{where}.name": f"unknown hyperparameter {p.name!r}; searchable: {searchable}"}
    if not param.searchable or (p.name == "label_smoothing" and task_type != C.TASK_TYPE_CLASSIFICATION):
        return {f"{where}.name": f"{p.name!r} cannot be searched"}
    if p.name in seen:
        return {f"{where}.name": f"{p.name!r} appears twice"}
    seen.add(p.name)
    has_range = bool(p.low or p.high or p.log or p.step)
    if p.choices and has_range:
        return {f"{where}.choices": "give either choices or a range (low, high, log, step), not both"}
    if p.choices:
        if len(p.choices) > MAX_CHOICES:
            return {f"{where}.choices": f"at most {MAX_CHOICES} choices, got {len(p.choices)}"}
        if len(set(p.choices)) != len(p.choices):
            return {f"{where}.choices": "choices must differ"}
        for j, text in enumerate(p.choices):
            try:
                value = parse_choice(param, text)
            except ValueError as exc:
                bad[f"{where}.choices[{j}]"] = str(exc)
                continue
            reason = _value_violation(p.name, value, base)
            if reason:
                bad[f"{where}.choices[{j}]"] = reason
        return bad
    if not has_range:
        return {}  # the default range
    if param.kind == CHOICE:
        return {f"{where}.low": f"{p.name!r} takes choices ({', '.join(param.all_choices())}), not a range"}
    for bound in ("low", "high"):
        value = getattr(p, bound)
        if not math.isfinite(value):
            bad[f"{where}.{bound}"] = f"must be a finite number, got {value}"
            continue
        if param.kind == INT and not float(value).is_integer():
            bad[f"{where}.{bound}"] = f"{p.name} is an integer, got {value:g}"
            continue
        reason = _value_violation(p.name, int(value) if param.kind == INT else value, base)
        if reason:
            bad[f"{where}.{bound}"] = reason
    if bad:
        return bad
    if p.low >= p.high:
        return {f"{where}.high": f"must be above low ({p.low:g}), got {p.high:g}"}
    if p.log and p.low <= 0:
        return {f"{where}.low": f"a log range needs low > 0, got {p.low:g}"}
    if p.log and p.step:
        return {f"{where}.step": "a log range cannot have a step"}
    if not math.isfinite(p.step) or p.step < 0:
        return {f"{where}.step": f"must be >= 0, got {p.step}"}
    if param.kind == INT and not float(p.step).is_integer():
        return {f"{where}.step": f"{p.name} is an integer, so its step must be one, got {p.step:g}"}
    if p.step and p.step > p.high - p.low:
        return {f"{where}.step": f"must be at most high - low ({p.high - p.low:g}), got {p.step:g}"}
    if grid and param.kind == FLOAT and not p.step:
        return {f"{where}.step": "a grid search needs choices or a step for a float range"}
    if grid and param.kind == INT and p.log:
        return {f"{where}.log": "a grid search needs choices or a stepped linear range"}
    return {}


# -- resolution -----------------------------------------------------------------------------------


def grid_values(p: T.SearchParameter) -> list[int | float | str]:
    """The values a grid takes for one resolved parameter."""
    param = PARAMS[p.name]
    if p.choices:
        return [parse_choice(param, c) for c in p.choices]
    step = p.step or 1
    count = int(math.floor((p.high - p.low) / step + 1e-9)) + 1
    values = [p.low + i * step for i in range(count)]
    return [int(round(v)) for v in values] if param.kind == INT else [round(v, 12) for v in values]


def grid_points(search: T.HyperparameterSearch) -> list[dict[str, int | float | str]]:
    names = [p.name for p in search.parameters]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*map(grid_values, search.parameters))]


def grid_size(search: T.HyperparameterSearch) -> int:
    return math.prod(len(grid_values(p)) for p in search.parameters)


def resolve(search: T.HyperparameterSearch, task_type: int, model: modelzoo_pb2.Model | None) -> T.HyperparameterSearch:
    """A copy with the default space, ranges, budget, objective and pruning settings filled in
    (call violations() before, resolved_violations() after)."""
    out = T.HyperparameterSearch()
    out.CopyFrom(search)
    out.method = out.method or T.SEARCH_METHOD_TPE
    if not out.parameters:
        out.parameters.extend(default_space(task_type, model))
    for p in out.parameters:
        if not (p.choices or p.low or p.high or p.log or p.step):
            p.CopyFrom(default_range(p.name, task_type, model))
    out.objective_metric = out.objective_metric or PRIMARY_METRIC.get(task_type, "val_loss")
    if not out.direction:
        out.direction = (
            T.OBJECTIVE_DIRECTION_MAXIMIZE if maximize(out.objective_metric) else T.OBJECTIVE_DIRECTION_MINIMIZE
        )
    out.max_trials = out.max_trials or DEFAULT_MAX_TRIALS
    if out.method == T.SEARCH_METHOD_GRID and not resolved_violations(out):
        out.max_trials = min(out.max_trials, grid_size(out)) if search.max_trials else grid_size(out)
    out.parallelism = out.parallelism or 1
    out.pruning.method = out.pruning.method or T.PRUNING_METHOD_NONE
    if out.pruning.method == T.PRUNING_METHOD_MEDIAN:
        out.pruning.startup_trials = out.pruning.startup_trials or DEFAULT_STARTUP_TRIALS
    if out.pruning.method == T.PRUNING_METHOD_SUCCESSIVE_HALVING:
        out.pruning.min_epochs = out.pruning.min_epochs or 1
        out.pruning.reduction_factor = out.pruning.reduction_factor or DEFAULT_REDUCTION_FACTOR
    out.seed = out.seed or hyperparams.DEFAULT_SEED
    return out


def resolved_violations(search: T.HyperparameterSearch, prefix: str = "search") -> dict[str, str]:
    """Problems only visible once the space is resolved (the grid's size)."""
    if search.method == T.SEARCH_METHOD_GRID:
        for i, p in enumerate(search.parameters):
            if not p.choices and (p.log or (PARAMS[p.name].kind == FLOAT and not p.step)):
                return {f"{prefix}.parameters[{i}]": f"a grid search needs choices or a stepped range for {p.name}"}
        size = grid_size(search)
        if size > MAX_GRID:
            return {f"{prefix}.parameters": f"the grid has {size} points; at most {MAX_GRID}"}
    return {}
