"""The console end to end in a real headless Chromium (Debian's `chromium`, driven by playwright-core from
node_modules) against the whole platform in-process with a trainer: each of the three modes walked to a
SUCCEEDED task, a bad hyperparameter's field error at the field; screenshots in build/test-output/console."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from inprocess import InProcessPlatform
from test_sdk import platform_settings

from gateway.http import CONSOLE_DIR
from services.dataset.samples import make_classification_archive

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "test-output" / "console"
PRESET_MODEL = "tv/mobilenet_v3_large.imagenet1k_v2"  # preset/industrial-defect-classification's network


def chromium() -> str | None:
    return os.environ.get("TRAINYARD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str:
    if chromium() is None:
        return "no chromium on PATH (apt-get install chromium; .ci/run installs it)"
    if shutil.which("node") is None or not (ROOT / "node_modules" / "playwright-core").is_dir():
        return "node or node_modules/playwright-core missing (npm ci at the repository root)"
    if not CONSOLE_DIR.is_dir():
        return "console/dist is not built (make console)"
    return ""


@pytest.mark.skipif(bool(missing()), reason=missing() or "ready")
def test_console_in_chromium(nats_server, s3_server, tmp_path, catalog_path):
    import torch
    import torchvision

    from trainyard.client import Client

    archive = tmp_path / "shapes.zip"
    archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=10, size=32, seed=11))
    overrides = {"http_listen": "127.0.0.1:0"}
    with InProcessPlatform(platform_settings(nats_server, s3_server, tmp_path), catalog_path, gateway=overrides) as p:
        # The preset's network gets this project's own weights (only MobileNetV2's ship with the tests).
        weights = tmp_path / "mnv3.pth"
        torch.manual_seed(0)
        torch.save(torchvision.models.mobilenet_v3_large().state_dict(), weights)
        with Client(p.gateway_address, p.admin_token) as ty:
            ty.models.upload_weights(weights, PRESET_MODEL)
        if SCREENSHOTS.exists():
            shutil.rmtree(SCREENSHOTS)
        SCREENSHOTS.mkdir(parents=True)
        env = {
            **os.environ,
            "TRAINYARD_HTTP_URL": p.http_url,
            "TRAINYARD_TOKEN": p.admin_token,
            "TRAINYARD_SCREENSHOTS": str(SCREENSHOTS),
            "TRAINYARD_ARCHIVE": str(archive),
            "TRAINYARD_CHROMIUM": chromium(),
        }
        run = subprocess.run(
            ["node", "--test", "--test-concurrency=1", str(ROOT / "tests" / "browser" / "console.test.mjs")],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "# fail 0" in run.stdout
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 20
