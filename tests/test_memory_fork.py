"""RecallMemory in multiprocessing workers, with every start method (issue 9, for the memory).

The parent recalls before forking (small recalls used to run their parallel loops on rayon's
global pool, which a forked child inherits without its threads, so the child's first recall
waited for ever) and keeps recalling from another thread while it forks. Each case runs in a
subprocess with a time limit, so a hang fails instead of hanging CI.
"""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, sys, threading
    import numpy as np
    import lpn

    MEM = None
    Q = np.random.default_rng(1).normal(size=(3, 16))

    def work(mem):
        mem.observe(np.random.default_rng(2).normal(size=(5, 16)), now=2.0)
        mem.reinforce([0, 1], now=3.0)
        mem.forget([4])
        ids, scores = mem.recall(Q, k=4, now=4.0)
        return ids.tobytes() + scores.tobytes() + mem.to_bytes()

    def work_inherited(_):
        return work(MEM)  # the parent's object itself, copied by fork (no pickling)

    if __name__ == "__main__":
        method, mode = sys.argv[1], sys.argv[2]
        MEM = lpn.RecallMemory(16, code_dim=32, seed=3, repeats=2)
        MEM.observe(np.random.default_rng(0).normal(size=(40, 16)), now=0.0)
        MEM.recall(Q[0], k=3, now=1.0)  # a small recall before the fork
        expected = work(lpn.RecallMemory.from_bytes(MEM.to_bytes()))
        if mode == "busy":  # fork while another thread is inside the memory
            def recall():
                while True:
                    MEM.recall(Q, k=5, now=1.0)
            threading.Thread(target=recall, daemon=True).start()
        with mp.get_context(method).Pool(2) as pool:
            if mode == "inherited":
                got = pool.map(work_inherited, [0, 1])
            else:
                got = pool.map(work, [MEM, MEM])
        assert got == [expected, expected], "a worker computed different results"
        print("ok")
""")

METHODS = [m for m in ("fork", "forkserver", "spawn") if m in mp.get_all_start_methods()]
CASES = [(m, "pickled") for m in METHODS] + [("fork", mode) for mode in ("inherited", "busy")
                                             if "fork" in METHODS]


@pytest.mark.parametrize("method,mode", CASES)
def test_memory_workers(method, mode, tmp_path):
    script = tmp_path / "memory_worker.py"
    script.write_text(SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), method, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the hung workers too
        p.communicate()
        pytest.fail(f"{method}/{mode}: memory workers hung (no result within 120 s)")
    assert p.returncode == 0 and out.strip() == "ok", (p.returncode, err[-3000:])
