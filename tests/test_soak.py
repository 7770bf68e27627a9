"""The long soak run (scripts/soak.py): only under `pytest -m soak`, never in CI."""

import os

import pytest
from helpers import load_script

pytestmark = pytest.mark.soak

SAMPLES = int(os.environ.get("LPN_SOAK_SAMPLES", "1000000"))


def test_soak_million_steps(tmp_path):
    soak = load_script("soak")
    report = soak.run(samples=SAMPLES, every=max(1, SAMPLES // 10), folder=str(tmp_path))
    assert report["no_nan"]
    assert report["weights_bounded"]
    assert report["resume_same_state"] and report["resume_continues_exactly"]
    assert len(report["files_kept"]) == 3
    assert report["rss_growth_second_half_mib"] < 64, report["checkpoints"]
    assert report["ok"]
