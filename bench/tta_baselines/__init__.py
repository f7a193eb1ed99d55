"""Bare PyTorch scripts the time-to-accuracy benchmark (bench/tta.py) runs beside the platform.

Each is what a competent engineer writes in an hour: the published recipe for its task with the same
pre-trained MobileNetV2 backbone the platform has, no platform code. They read the dataset the
benchmark describes (bench/tta.py writes `dataset.json`: classes and the platform's split of the same
archive, so both sides train and score on the same images) and print one JSON line per epoch:
{"epoch": N, "t": seconds since the script started, "metric": value}.
"""
