"""What an exported ONNX file says about itself (its metadata_props): the trainer writes it, the
inference service (and anyone with the file alone) reads it. Values are strings; lists are JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

PREFIX = "trainyard."
TASK_TYPE = PREFIX + "task_type"  # "classification", "detection", "segmentation", "instance_segmentation"
CLASS_NAMES = PREFIX + "class_names"  # JSON list, in output order (detectors: label i + 1 is class i)
INPUT_SIZE = PREFIX + "input_size"  # square side (or shorter side, or height: see RESIZE) in pixels
# How an image is resized before the model: "square" (input_size x input_size; files without this key),
# "shorter_side" (detectors: the shorter side to input_size, the aspect kept, the longer side at most
# 1333/800 of it), or "<height>x<width>" (semantic segmentation trained at that shape).
RESIZE = PREFIX + "resize"
SQUARE, SHORTER_SIDE = "square", "shorter_side"
MAX_ASPECT = 1333 / 800
MEAN = PREFIX + "mean"  # JSON list of 3
STD = PREFIX + "std"  # JSON list of 3
THRESHOLD = PREFIX + "threshold"  # the default confidence threshold (F1-best of its evaluation)
MODEL_ID = PREFIX + "model_id"  # the zoo model the training started from
TASK_ID = PREFIX + "task_id"  # the training task that produced it
PREPROCESS = PREFIX + "preprocess"  # how to feed it, in words
DETECTION_TASKS = ("detection", "instance_segmentation")


def resize_mode(task_type: str, image_size: int, image_width: int = 0) -> str:
    """RESIZE of a model trained at image_size (and image_width) for the task type."""
    if task_type in DETECTION_TASKS:
        return SHORTER_SIDE
    if image_width:
        return f"{image_size}x{image_width}"
    return SQUARE


def resized(width: int, height: int, input_size: int, resize: str = SQUARE) -> tuple[int, int]:
    """(width, height) an image of that size is resized to before the model."""
    if resize == SHORTER_SIDE:
        scale = input_size / min(width, height)
        if max(width, height) * scale > input_size * MAX_ASPECT:
            scale = input_size * MAX_ASPECT / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    if resize != SQUARE:
        h, w = (int(v) for v in resize.split("x"))
        return w, h
    return input_size, input_size


def preprocess_note(task_type: str) -> str:
    if task_type in DETECTION_TASKS:
        return (
            "one RGB image per call as float32 [3, input_size, input_size] in [0, 1] (input 'image'); the model "
            "normalises inside; outputs boxes (input pixels), labels (class index + 1), scores[, masks]"
        )
    return (
        "RGB float32 [N, 3, input_size, input_size] in [0, 1], then (x - mean) / std per channel (input 'images'); "
        "output 'logits' [N, classes] (segmentation: [N, classes, input_size, input_size])"
    )


@dataclass(frozen=True)
class OnnxMetadata:
    task_type: str
    class_names: list[str]
    input_size: int
    mean: list[float]
    std: list[float]
    threshold: float
    model_id: str = ""
    task_id: str = ""
    resize: str = SQUARE

    def props(self) -> dict[str, str]:
        return {
            TASK_TYPE: self.task_type,
            CLASS_NAMES: json.dumps(self.class_names),
            INPUT_SIZE: str(self.input_size),
            RESIZE: self.resize,
            MEAN: json.dumps([float(v) for v in self.mean]),
            STD: json.dumps([float(v) for v in self.std]),
            THRESHOLD: f"{self.threshold:.6g}",
            MODEL_ID: self.model_id,
            TASK_ID: self.task_id,
            PREPROCESS: preprocess_note(self.task_type),
        }

    @classmethod
    def parse(cls, props: dict[str, str]) -> OnnxMetadata:
        """From an ONNX file's metadata_props; ValueError naming the missing or bad key."""
        try:
            return cls(
                task_type=props[TASK_TYPE],
                class_names=[str(c) for c in json.loads(props[CLASS_NAMES])],
                input_size=int(props[INPUT_SIZE]),
                mean=[float(v) for v in json.loads(props[MEAN])],
                std=[float(v) for v in json.loads(props[STD])],
                threshold=float(props[THRESHOLD]),
                model_id=props.get(MODEL_ID, ""),
                task_id=props.get(TASK_ID, ""),
                resize=_resize(props.get(RESIZE, SQUARE)),
            )
        except KeyError as exc:
            raise ValueError(
                f"the ONNX file has no metadata {exc.args[0]!r} (exported before metadata was written?)"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the ONNX file's trainyard metadata cannot be read: {exc}") from None


def _resize(value: str) -> str:
    if value in (SQUARE, SHORTER_SIDE):
        return value
    h, _, w = value.partition("x")
    if not (h.isdigit() and w.isdigit()):
        raise ValueError(f"{RESIZE} is {value!r}: expected square, shorter_side or <height>x<width>")
    return value
