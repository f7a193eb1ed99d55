"""Settings of the inference service: the shared ones plus its limits (env TRAINYARD_INFERENCE_*)."""

from __future__ import annotations

from pydantic import Field

from kernel.settings import Settings


class InferenceSettings(Settings):
    # Bytes of ONNX models kept loaded (sessions, least recently used go first); a model's share is its
    # file's size times SESSION_MEMORY_FACTOR (weights plus onnxruntime's buffers).
    inference_cache_bytes: int = Field(default=2 * 1024**3, ge=1024**2)
    # Images one Predict call may carry, and the largest one in bytes and in pixels.
    inference_max_images: int = Field(default=64, ge=1, le=1024)
    inference_max_image_bytes: int = Field(default=32 * 1024**2, ge=1024)
    inference_max_pixels: int = Field(default=40_000_000, ge=1024)
    # Requests for the same model that arrive while a batch runs are queued and run together as the next
    # batch (classifiers and segmenters), adding no latency; a window > 0 also waits this long for more.
    inference_batch_window_ms: float = Field(default=0.0, ge=0, le=1000)
    # Images per onnxruntime run at most.
    inference_max_batch: int = Field(default=32, ge=1, le=1024)
    # onnxruntime intra-op threads per session; 0 lets onnxruntime choose (one per core).
    inference_threads: int = Field(default=0, ge=0, le=256)
    # Seconds a model id stays resolved to its ONNX file (a retrained model is seen after this).
    inference_resolve_ttl_s: float = Field(default=30.0, ge=0)


def inference_settings(settings: Settings) -> InferenceSettings:
    if isinstance(settings, InferenceSettings):
        return settings
    return InferenceSettings.model_validate(dict(settings.__dict__))
