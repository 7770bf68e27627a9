"""Concurrency stress (scripts/stress.py, 60 s by default) at 10 s: 8 threads predict and read
stats while 2 learn and 1 saves. `LPN_STRESS_SECONDS` changes the duration."""

import os

from helpers import load_script

SECONDS = float(os.environ.get("LPN_STRESS_SECONDS", "10"))


def test_predict_learn_save_concurrently(tmp_path):
    report = load_script("stress").run(SECONDS, str(tmp_path))
    assert not report["errors"], report["errors"]
    assert report["threads_hung"] == 0, "deadlock: a thread did not finish"
    assert report["files_ok"], report["files"]
    assert report["ok"], report
    # The lock is held in slices of ~20 ms: no reader waited anywhere near a whole batch.
    assert report["worst_predict_s"] < 5.0, report
