"""Reproducers of issue 9's failures, each fixed: no hang, no abort, no panic, no lie.

Cases that hung or aborted the process before the fix run in a subprocess with a time limit,
so a regression fails the test instead of hanging or killing the test run.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import lpn


def run_script(src: str, timeout: float = 60, env=None) -> str:
    """Run `src` in a fresh interpreter; fail on a hang, a signal or a non-zero exit."""
    code, stdout, stderr = run_limited([sys.executable, "-c", textwrap.dedent(src)], timeout,
                                       env=env)
    if code is None:
        pytest.fail(f"hung: no result within {timeout} s")
    assert code == 0, f"exit {code}:\n{stderr[-3000:]}"
    return stdout


def run_limited(cmd, timeout, env=None):
    """(exit code or None on timeout, stdout, stderr); on a timeout the whole process group
    (worker processes included) is killed, so a hang leaves nothing behind."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None, "", ""
    return p.returncode, out, err


def small(**cfg):
    return lpn.Network([lpn.LayerSpec(6, 5, radius=0.4)], lpn.LearnConfig(**cfg), seed=2)


# -- 2. unbounded requests ------------------------------------------------------------------------
def test_huge_replay_is_refused_at_once_and_changes_nothing():
    out = run_script("""
        import numpy as np, lpn, time
        net = lpn.Network([lpn.LayerSpec(6, 5, radius=0.4)],
                          lpn.LearnConfig(replay_capacity=8), seed=2)
        net.learn(np.ones((3, 6)), np.ones((3, 5)))
        before = net.to_bytes()
        for bad in (2**63, np.uint64(2**64 - 1), 2**64, lpn.MAX_REPLAY + 1):
            t0 = time.perf_counter()
            try:
                net.learn(np.ones(6), np.ones(5), replay=bad)
            except ValueError as e:
                assert "replay" in str(e), e
            else:
                raise SystemExit(f"replay={bad} accepted")
            assert time.perf_counter() - t0 < 1.0
        assert net.to_bytes() == before
        net.learn(np.ones(6), np.ones(5), replay=lpn.MAX_REPLAY)
        assert net.stats()["replays"] == lpn.MAX_REPLAY
        print("ok")
    """, timeout=60)
    assert out.strip() == "ok"


# -- 3. panics and aborts from accepted input -----------------------------------------------------
def test_sizes_and_radii_raise_value_error_never_abort(tmp_path):
    out = run_script("""
        import numpy as np, lpn
        cases = {
            "radius": lambda: [lpn.LayerSpec(8, 4, radius=1e308)],
            "growth_radius": lambda: [lpn.LayerSpec(8, 4, growth_radius=1e308)],
            "n_in": lambda: [lpn.LayerSpec(2**32 - 1, 1)],
            "dense": lambda: [lpn.LayerSpec(100000, 100000, radius=0.5)],
        }
        for name, specs in cases.items():
            try:
                lpn.Network(specs())
            except ValueError as e:
                msg = str(e)
                if name in ("n_in", "dense"):
                    assert "bytes" in msg, msg
                else:
                    assert name in msg, msg
            else:
                raise SystemExit(f"{name}: accepted")
        # The largest radius and growth radius accepted build and restructure (inside learn).
        net = lpn.Network([lpn.LayerSpec(8, 4, radius=2.0, growth_radius=2.0)],
                          lpn.LearnConfig(restructure_every=1))
        net.learn(np.ones((3, 8)), np.ones((3, 4)))
        assert net.stats()["samples"] == 3
        # Tags at the top of the u32 range are plain labels.
        net = lpn.Network([lpn.LayerSpec(4, 4, in_tags=[0, 1, 2, 2**32 - 1],
                                         out_tags=[0, 0, 0, 2**32 - 1])],
                          lpn.LearnConfig(restructure_every=1))
        net.learn(np.ones((3, 4)), np.ones((3, 4)))
        print("ok")
    """, timeout=120)
    assert out.strip() == "ok"


def _edit_specs(blob: bytes, edit) -> bytes:
    import struct
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    specs = json.loads(header["__metadata__"]["specs"])
    edit(specs)
    header["__metadata__"]["specs"] = json.dumps(specs)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob[8 + n:]


def test_checkpoint_with_edited_radius_is_refused_or_safe():
    # A 40k x 40k layer with a tiny radius is a small file; editing its radius to 0.5 made the
    # next restructure allocate ~40k x 40k candidates and abort the process.
    out = run_script("""
        import json, struct, numpy as np, lpn
        net = lpn.Network([lpn.LayerSpec(40000, 40000, radius=0.00003)],
                          lpn.LearnConfig(restructure_every=2))
        blob = net.to_bytes()
        n = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8:8 + n])
        meta = header["__metadata__"]
        for radius in (0.5, 1e308, 2.0):
            specs = json.loads(meta["specs"])
            specs[0]["radius"] = radius
            specs[0]["growth_radius"] = None
            meta["specs"] = json.dumps(specs)
            h = json.dumps(header).encode()
            bad = struct.pack("<Q", len(h)) + h + blob[8 + n:]
            try:
                back = lpn.Network.from_bytes(bad)
            except ValueError as e:
                assert "radius" in str(e) or "bytes" in str(e), e
                continue
            back.restructure()
        print("ok")
    """, timeout=120, env={**os.environ, "LPN_MAX_BYTES": str(4 << 30)})
    assert out.strip() == "ok"


# -- 4. configs that diverge ----------------------------------------------------------------------
@pytest.mark.parametrize("field", ["lr", "bias_lr"])
@pytest.mark.parametrize("value", [50.0, 2.0, -0.1, float("nan")])
def test_unstable_learning_rates_are_refused(field, value):
    # The engine's validator runs when the config is built, before any network exists.
    with pytest.raises(ValueError, match=field):
        lpn.LearnConfig(**{field: value})


@pytest.mark.parametrize("lr,bias_lr", [(1.5, None), (1.0, 1.01), (1.9, 0.2)])
def test_rates_whose_sum_overshoots_are_refused(lr, bias_lr):
    with pytest.raises(ValueError, match="lr \\+ bias_lr"):
        lpn.LearnConfig(lr=lr, bias_lr=bias_lr)


@pytest.mark.parametrize("lr,bias_lr", [(1.0, None), (1.99, 0.01), (0.01, 1.99)])
def test_rates_at_the_edge_of_the_stable_range_stay_finite(lr, bias_lr):
    r = np.random.default_rng(0)
    for act in ("linear", "tanh", "relu"):
        net = lpn.Network([lpn.LayerSpec(16, 24, radius=0.3, activation=act),
                           lpn.LayerSpec(24, 4, radius=0.5)],
                          lpn.LearnConfig(lr=lr, bias_lr=bias_lr, budget=1.0, budget_max=1.0),
                          seed=1)
        for scale in (1e-4, 1.0, 1e3):
            losses = [net.learn(r.normal(size=(50, 16)) * scale, r.normal(size=(50, 4)))
                      for _ in range(20)]
            assert np.all(np.isfinite(losses)), (act, scale)
        assert np.all(np.isfinite(net.predict(r.normal(size=(8, 16)))))


# -- 5. automatic checkpoint failure -------------------------------------------------------------
def test_failed_automatic_checkpoint_warns_keeps_the_sample_and_retries(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the checkpoint directory should be")
    net = small()
    net.checkpoint_every(2, blocker / "ck")
    x, t = np.ones((2, 6)), np.ones((2, 5))
    with pytest.warns(lpn.CheckpointWarning, match="retried"):
        net.learn(x, t)
    assert net.stats()["samples"] == 2  # learned once, not rolled back, no exception
    blocker.unlink()
    blocker.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.learn(x[:1], t[:1])  # the retry: the save now succeeds
    files = sorted(os.listdir(blocker / "ck"))
    assert len(files) == 1 and files[0].endswith("000000000003.safetensors"), files
    assert lpn.Network.load(blocker / "ck" / files[0]).same_state(net)


# -- 6. deterministic checkpoint bytes ------------------------------------------------------------
def test_checkpoint_bytes_are_deterministic_within_and_across_processes():
    net = small(replay_capacity=4)
    net.learn(np.linspace(0, 1, 30).reshape(5, 6), np.ones((5, 5)), replay=1)
    blobs = {net.to_bytes() for _ in range(50)}
    assert len(blobs) == 1
    digest = hashlib.sha256(blobs.pop()).hexdigest()
    out = run_script("""
        import hashlib, numpy as np, lpn
        net = lpn.Network([lpn.LayerSpec(6, 5, radius=0.4)],
                          lpn.LearnConfig(replay_capacity=4), seed=2)
        net.learn(np.linspace(0, 1, 30).reshape(5, 6), np.ones((5, 5)), replay=1)
        print(hashlib.sha256(net.to_bytes()).hexdigest())
    """)
    assert out.strip() == digest
    assert lpn.Network.from_bytes(net.to_bytes()).to_bytes() == net.to_bytes()


# -- 7. the GIL and the lock ----------------------------------------------------------------------
def big():
    return lpn.Network([lpn.LayerSpec(900, 900, dims=2, radius=0.15, activation="tanh"),
                        lpn.LayerSpec(900, 10, radius=0.3)], seed=4)


def test_readers_never_wait_for_a_long_learn_call():
    net = big()
    r = np.random.default_rng(0)
    # The batch must outlast the readers (5 rounds, each at most two 20 ms learn slices, so at
    # most 0.2 s of reading): it is sized from a timed probe on a warmed-up network to last
    # about 4 s whatever the engine's speed; a probe slowed by a busy machine only makes the
    # batch shorter than planned, hence the 20x margin. Only rounds that end while the batch
    # is still running count.
    probe = big()
    probe.learn(r.normal(size=(20, 900)), r.normal(size=(20, 10)))  # warm-up: scratch, pool
    probe_x, probe_t = r.normal(size=(50, 900)), r.normal(size=(50, 10))
    t0 = time.perf_counter()
    probe.learn(probe_x, probe_t)
    per_sample = (time.perf_counter() - t0) / 50
    n = int(min(400_000, max(2000, 4.0 / per_sample)))
    x, t = r.normal(size=(n, 900)), r.normal(size=(n, 10))
    done = threading.Event()

    def learner():
        net.learn(x, t)
        done.set()

    th = threading.Thread(target=learner)
    th.start()
    while net.stats()["samples"] == 0 and not done.is_set():
        time.sleep(0.001)
    worst = {"dims": 0.0, "stats": 0.0, "predict": 0.0}
    rounds = 0
    while not done.is_set() and rounds < 5:
        took = {}
        for name, call in (("dims", lambda: (net.n_in, net.n_out, net.seed, len(net.layers))),
                           ("stats", net.stats),
                           ("predict", lambda: net.predict(x[0]))):
            t0 = time.perf_counter()
            call()
            took[name] = time.perf_counter() - t0
        if done.is_set():
            break  # this round may have overlapped the end of the batch: not counted
        for name, v in took.items():
            worst[name] = max(worst[name], v)
        rounds += 1
    th.join(timeout=300)
    assert rounds >= 1, "the batch finished before the readers could be measured"
    # Before: every one of these waited for the whole batch (seconds) with the GIL held.
    assert worst["dims"] < 0.05, worst
    assert worst["stats"] < 1.0 and worst["predict"] < 1.0, worst
    assert net.stats()["samples"] == n


def test_a_waiting_reader_does_not_hold_the_gil():
    """While one thread waits for the engine, pure-Python threads keep running."""
    net = lpn.Network([lpn.LayerSpec(400, 400, dims=2, radius=0.2), lpn.LayerSpec(400, 4)],
                      lpn.LearnConfig(replay_capacity=4), seed=1)
    x, t = np.ones((4, 400)), np.zeros((4, 4))
    net.learn(x, t)
    stop = threading.Event()

    def learner():  # one sample with many replays holds the lock for a long slice
        while not stop.is_set():
            net.learn(x[0], t[0], replay=lpn.MAX_REPLAY)

    ticks = [0]

    def counter():
        while not stop.is_set():
            ticks[0] += 1

    threads = [threading.Thread(target=learner), threading.Thread(target=counter)]
    for th in threads:
        th.start()
    # Only calls that really waited for the learner (> 10 ms) count; on a busy machine some
    # land between two learn calls and return at once.
    waits, during = [], 0
    deadline = time.perf_counter() + 30
    while len(waits) < 5 and time.perf_counter() < deadline:
        before = ticks[0]
        t0 = time.perf_counter()
        net.stats()
        took = time.perf_counter() - t0
        if took > 0.01:
            waits.append(took)
            during += ticks[0] - before
    stop.set()
    for th in threads:
        th.join(timeout=120)
    assert len(waits) == 5, waits
    # Waiting with the GIL held, the counter could not advance at all during the waits.
    assert during > 1000, (during, waits)


def test_predictions_run_concurrently_with_each_other():
    net = big()
    x = np.random.default_rng(1).normal(size=(3000, 900))
    t0 = time.perf_counter()
    net.predict(x)
    alone = time.perf_counter() - t0
    quick = []

    def long_reader():
        net.predict(x)

    th = threading.Thread(target=long_reader)
    th.start()
    time.sleep(alone * 0.2)
    t1 = time.perf_counter()
    net.predict(x[:1])
    quick.append(time.perf_counter() - t1)
    th.join(timeout=120)
    # A shared lock: the one-sample predict does not wait for the long one to finish.
    assert quick[0] < alone * 0.5, (quick, alone)


# -- Ctrl-C during a long batch -------------------------------------------------------------------
def test_keyboard_interrupt_within_100ms_leaves_whole_samples():
    out = run_script("""
        import json, os, signal, threading, time
        import numpy as np, lpn
        def make():
            return lpn.Network([lpn.LayerSpec(900, 900, dims=2, radius=0.15,
                                              activation="tanh"),
                                lpn.LayerSpec(900, 10, radius=0.3)],
                               lpn.LearnConfig(replay_capacity=16), seed=4)
        r = np.random.default_rng(0)
        x, t = r.normal(size=(20000, 900)), r.normal(size=(20000, 10))
        net = make()
        sent = []
        def interrupt():
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)
        threading.Timer(1.5, interrupt).start()
        try:
            net.learn(x, t, replay=2)
        except KeyboardInterrupt:
            latency = time.perf_counter() - sent[0]
        else:
            raise SystemExit("the whole batch ran: not interrupted")
        k = net.stats()["samples"]
        ref = make()
        ref.learn(x[:k], t[:k], replay=2)
        print(json.dumps({"latency": latency, "samples": k,
                          "same": ref.same_state(net)}))
    """, timeout=300)
    res = json.loads(out)
    assert 0 < res["samples"] < 20000
    assert res["same"], "the interrupted network is not the state after its last whole sample"
    assert res["latency"] < 0.1, res


# -- last line of defence -------------------------------------------------------------------------
def test_a_panic_becomes_runtime_error_and_never_serves_a_half_updated_state():
    net = small()
    before = net.to_bytes()
    with pytest.raises(RuntimeError, match="bug"):
        net._engine._panic_for_tests(False)  # a read-only call: the network stays usable
    assert net.to_bytes() == before
    with pytest.raises(RuntimeError, match="bug"):
        net._engine._panic_for_tests(True)  # a mutating call: may be half updated
    with pytest.raises(RuntimeError, match="unusable"):
        net.learn(np.ones(6), np.ones(5))
    with pytest.raises(RuntimeError, match="unusable"):
        net.predict(np.ones(6))


# -- 8. smaller items ----------------------------------------------------------------------------
def test_out_of_range_ints_are_value_errors_not_overflow():
    net = small(replay_capacity=2)
    with pytest.raises(ValueError):
        net.learn(np.ones(6), np.ones(5), replay=2**64)
    with pytest.raises(ValueError, match="seed"):
        lpn.Network([lpn.LayerSpec(4, 4)], seed=2**64)
    lpn.Network([lpn.LayerSpec(4, 4)], seed=2**64 - 1)
    before = lpn.get_num_threads()
    for bad in (-1, 2**64, 10**6):
        with pytest.raises(ValueError, match="n must lie"):
            lpn.set_num_threads(bad)
    with pytest.raises(TypeError):
        lpn.set_num_threads(1.5)
    assert lpn.get_num_threads() == before


def test_set_num_threads_zero_restores_the_default():
    try:
        lpn.set_num_threads(3)
        assert lpn.get_num_threads() == 3
        lpn.set_num_threads(0)
        want = int(os.environ.get("RAYON_NUM_THREADS", "0")) or os.cpu_count()
        assert lpn.get_num_threads() == want
    finally:
        lpn.set_num_threads(0)


def test_zero_d_input_is_reported_as_a_scalar():
    with pytest.raises(ValueError, match=r"0-d"):
        small().predict(np.float32(1.0))
    with pytest.raises(ValueError, match=r"0-d"):
        small().learn(1.0, np.ones(5))


def test_bytes_paths_work(tmp_path):
    net = small()
    p = os.fsencode(str(tmp_path / "n.safetensors"))
    assert net.save(p) == os.fsdecode(p)
    assert lpn.Network.load(p).same_state(net)
    net.checkpoint_every(1, os.fsencode(str(tmp_path / "series")))
    net.learn(np.ones(6), np.ones(5))
    assert lpn.Network.load_latest(os.fsencode(str(tmp_path / "series"))).same_state(net)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_load_refuses_devices_and_fifos(tmp_path):
    out = run_script(f"""
        import os, warnings, lpn
        try:
            lpn.Network.load("/dev/zero")
        except ValueError as e:
            assert "regular file" in str(e), e
        else:
            raise SystemExit("loaded /dev/zero")
        d = {str(tmp_path)!r}
        fifo = os.path.join(d, "lpn-000000000001.safetensors")
        os.mkfifo(fifo)
        try:
            lpn.Network.load(fifo)
        except ValueError as e:
            assert "regular file" in str(e), e
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            try:
                lpn.Network.load_latest(d)
            except ValueError as e:
                assert "could be loaded" in str(e), e
        print("ok")
    """, timeout=30)
    assert out.strip() == "ok"


def test_temporaries_of_killed_saves_are_cleaned_up(tmp_path):
    net = small()
    target = tmp_path / "net.safetensors"
    # A save killed mid-write by a process that no longer exists ...
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".net.safetensors.{dead}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    # ... and one of a live writer (this process's parent is alive).
    live = tmp_path / f".net.safetensors.{os.getppid()}.def456.tmp"
    live.write_bytes(b"being written")
    net.save(target)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in names and live.name in names, names
    assert "net.safetensors" in names


def test_kill9_during_saves_leaves_no_temporaries_after_the_next_save(tmp_path):
    src = f"""
        import numpy as np, lpn
        net = lpn.Network([lpn.LayerSpec(300, 300, radius=0.3)], seed=1)
        while True:
            net.save({str(tmp_path / "n.safetensors")!r})
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(src)])
    time.sleep(3.0)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    small().save(tmp_path / "n.safetensors")
    assert [f.name for f in tmp_path.iterdir()] == ["n.safetensors"]
