"""Load, scaled down (bench/load.py; the full size is `make loadtest`): concurrent API clients through the
gateway see nothing but successes and rate limiting, and a queue of tiny tasks drained by 4 trainer
processes loses none and runs none twice.

Sizes: TRAINYARD_LOAD_CLIENTS (50), TRAINYARD_LOAD_SECONDS (10), TRAINYARD_LOAD_TASKS (20),
TRAINYARD_LOAD_TRAINERS (4).
"""

from __future__ import annotations

import json
import os

import pytest
from inprocess import InProcessPlatform
from test_sdk import platform_settings
from test_trainer_kill import drop_consumer

from bench.load import api_load, drain, make_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def size(name: str, default: int) -> int:
    return int(os.environ.get(f"TRAINYARD_LOAD_{name}", default))


@pytest.fixture
def platform(nats_server, s3_server, tmp_path, tmp_path_factory, catalog_path):
    catalog = catalog_path
    with InProcessPlatform(platform_settings(nats_server, s3_server, tmp_path), catalog, trainer=False) as p:
        yield p


async def test_concurrent_api_clients_see_only_successes_and_rate_limiting(platform):
    tokens = await make_keys(platform.gateway_address, platform.admin_token, 5)
    result = await api_load(platform.gateway_address, tokens, size("CLIENTS", 50), size("SECONDS", 10))
    print("FIGURE api load", json.dumps(result.__dict__))
    assert result.ok, (result.codes, result.other_errors)
    assert result.codes.get("OK", 0) > result.clients  # every client got through, more than once


async def test_tiny_tasks_drained_by_four_trainers_none_lost_none_run_twice(platform, settings, tmp_path):
    await drop_consumer(settings)  # the trainers make the shared consumer with their own settings
    try:
        result = await drain(
            platform.gateway_address,
            platform.admin_token,
            settings,
            tasks=size("TASKS", 20),
            trainers=size("TRAINERS", 4),
            workdir=tmp_path,
            timeout=600,
        )
    finally:
        await drop_consumer(settings, purge=True)
    print("FIGURE drain", json.dumps(result.__dict__))
    assert result.ok, result.problems
    assert sum(result.per_trainer.values()) == result.tasks
