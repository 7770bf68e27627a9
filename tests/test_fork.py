"""Workers that learn, started with every multiprocessing start method (issue 9, failure 1).

Before the fix a forked child inherited the parent's thread pool without its threads, and its
first `learn`/`predict` on a network of more than 4,096 synapse slots waited for ever. Each case
runs in a subprocess with a time limit, so a hang fails the test instead of hanging CI.

`busy` forks while another thread predicts; the script then exits with that daemon thread still
inside the engine, which is what crashed it (see the exit test at the end).
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

    NET = None

    def make():
        # 256 x 256 with radius 0.1: ~13,000 synapse slots, far above the inline threshold.
        return lpn.Network([lpn.LayerSpec(256, 256, radius=0.1)], seed=3)

    def train(net):
        r = np.random.default_rng(0)
        net.learn(r.normal(size=(30, 256)), r.normal(size=(30, 256)))
        net.restructure()
        return net.predict(np.ones(256)).tobytes()

    def train_inherited(_):
        return train(NET)  # the parent's object itself, copied by fork (no pickling)

    if __name__ == "__main__":
        method, mode = sys.argv[1], sys.argv[2]
        NET = make()
        NET.learn(np.zeros((2, 256)), np.zeros((2, 256)))  # the pool is running now
        expected = train(lpn.Network.from_bytes(NET.to_bytes()))
        stop = threading.Event()
        if mode == "busy":  # fork while another thread is inside the engine
            def predict():
                while not stop.is_set():
                    NET.predict(np.ones((4, 256)))
            threading.Thread(target=predict, daemon=True).start()
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            if mode == "inherited":
                got = pool.map(train_inherited, [0, 1])
            else:
                got = pool.map(train, [NET, NET])
        stop.set()
        assert got == [expected, expected], "a worker computed different numbers"
        print("ok")
""")

METHODS = [m for m in ("fork", "forkserver", "spawn") if m in mp.get_all_start_methods()]


def run(method: str, mode: str, tmp_path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), method, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the hung workers too
        p.communicate()
        pytest.fail(f"{method}/{mode}: workers hung (no result within 120 s)")
    assert p.returncode == 0 and out.strip() == "ok", err[-3000:]


@pytest.mark.parametrize("method", METHODS)
def test_workers_learn(method, tmp_path):
    run(method, "pickled", tmp_path)


@pytest.mark.skipif("fork" not in METHODS, reason="no fork on this platform")
@pytest.mark.parametrize("mode", ["inherited", "busy"])
def test_forked_workers_learn(mode, tmp_path):
    run("fork", mode, tmp_path)


EXIT_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import lpn

    NET = lpn.Network([lpn.LayerSpec(256, 256, radius=0.1)], seed=3)
    MEM = lpn.RecallMemory(16, code_dim=32, seed=1)
    MEM.observe(np.random.default_rng(0).normal(size=(50, 16)), now=0.0)
    q = np.ones((64, 16))

    def predict():
        while True:
            NET.predict(np.ones((4, 256)))

    def learn():
        while True:
            NET.learn(np.ones((2, 256)), np.zeros((2, 256)))

    def recall():
        while True:
            MEM.recall(q, k=5, now=1.0)

    for f in (predict, predict, learn, recall):
        threading.Thread(target=f, daemon=True).start()
    time.sleep(0.2)
    print("ok")  # the interpreter now exits with every thread inside the engine
""")


def test_exit_while_daemon_threads_are_inside_the_engine(tmp_path):
    """The cause of the `busy` failure above: a daemon thread still inside the engine when the
    interpreter exits. CPython < 3.14 ends such a thread with a forced unwind through our
    frames, which crashed the shipped (zig-linked) wheel with SIGSEGV in 26 of 30 runs; the
    engine now parks such threads before they re-enter the interpreter (python/detach.rs)."""
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    for _ in range(3):
        p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stderr[-3000:])
