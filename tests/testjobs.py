"""Jobs as the training service queues them, for tests that hand a job to a trainer directly: the trainer has
no defaults of its own, so a test's job is completed the way the service completes one (its hyperparameters
resolved by services.training.hyperparams with the test's own values as the recipe; the model's normalisation
and a transfer strategy filled)."""

from __future__ import annotations

from kernel import contract
from services.training import hyperparams
from trainyard.common.v1 import common_pb2 as C


def resolved(job):
    """The job, completed in place (and returned)."""
    job.hyperparameters.CopyFrom(hyperparams.resolve(job.hyperparameters, recipe=C.Hyperparameters()))
    if not job.model.mean:
        job.model.mean.extend(contract.IMAGENET_MEAN)
    if not job.model.std:
        job.model.std.extend(contract.IMAGENET_STD)
    job.transfer_strategy = job.transfer_strategy or C.TRANSFER_STRATEGY_FINE_TUNE_ALL
    return job


def fit_config(**values):
    """trainer.engine.FitConfig with the service's resolved defaults for what the test does not set."""
    from trainer import engine

    hp = hyperparams.resolve(C.Hyperparameters(epochs=1))
    base = dict(
        learning_rate=hp.learning_rate,
        backbone_lr_multiplier=hp.backbone_lr_multiplier,
        weight_decay=hp.weight_decay,
        optimizer=hp.optimizer,
        strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
        seed=hp.seed,
        schedule=hp.lr_schedule,
        step_gamma=hp.lr_step_gamma,
    )
    return engine.FitConfig(**(base | values))
