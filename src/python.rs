//! The Python module `lpn._lpn`: thin wrappers that take numpy views, release the GIL around all
//! compute and return fresh numpy arrays. The Python package (`python/lpn`) adds validation of
//! dtypes and shapes and the user-facing classes.
use crate::arena::{Flat, FlatVec};
use crate::checkpoint;
use crate::config::{self, LayerSpec, LearnConfig};
use crate::error::LpnError;
use crate::network::{Network, Stat};
use crate::pool;
use crate::topology;

pub(crate) mod detach;
use detach::Broken;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

impl From<LpnError> for PyErr {
    fn from(e: LpnError) -> PyErr {
        match e {
            LpnError::Value(m) => PyValueError::new_err(m),
        }
    }
}

type Pair<'py, T> = (Bound<'py, T>, Bound<'py, T>);
/// Replay buffer contents: x, t, mask (flattened) and the number of samples ever offered.
type ReplayView<'py> = (
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<bool>>,
    u64,
);

/// The Rust network behind `lpn.Network`. Frozen: all mutation goes through the lock, so the
/// object can be shared between Python threads.
///
/// Locking (docs/long-running.md): every lock is taken with the GIL released, so a thread
/// waiting for the engine never stops other Python threads. Readers (`predict`, `stats`, ...)
/// share the lock; a `learn` batch holds it in slices of at most `LEARN_SLICE`, letting readers
/// in between samples and checking for Ctrl-C between slices. Dimensions never change after
/// construction and are read without any lock.
#[pyclass(frozen, module = "lpn._lpn", name = "Engine")]
pub struct Engine {
    inner: RwLock<Network>,
    /// Readers blocked on `inner` right now (`read`); a `learn` batch lets them in between
    /// its slices (`let_readers_in`).
    readers_waiting: AtomicUsize,
    /// Taken for a whole `learn` batch: batches of concurrent learners never interleave.
    learning: BatchLock,
    /// Set when a panic (a bug) interrupted a call that mutates: the state may be half updated.
    broken: Broken,
    n_layers: usize,
    n_in: usize,
    n_out: usize,
    seed: u64,
}

/// Longest a `learn` call holds the engine lock (and goes without checking for signals) at a
/// time; it stops after the first whole sample that ends past it.
const LEARN_SLICE: Duration = Duration::from_millis(20);

/// Longest a `learn` batch waits, between two slices, for readers already queued to take the
/// lock; bounds what a descheduled reader can cost the learner.
const READER_GRACE: Duration = Duration::from_millis(20);

/// About this many multiply-adds per `predict` slice between checks for signals.
const PREDICT_SLICE_WORK: usize = 1 << 22;

/// A lock held across GIL releases and re-acquisitions (a `MutexGuard` cannot leave the thread
/// that `py.detach` runs on): the mutex guards only the state and is never held while waiting.
#[derive(Default)]
struct BatchLock {
    state: Mutex<BatchState>,
    freed: Condvar,
}

#[derive(Default)]
struct BatchState {
    busy: bool,
    /// Learners waiting on `freed`: a release signals only when there is one, since the
    /// signal is a system call (`futex`) every time: about 9% of a 1,024-synapse `learn`.
    waiting: usize,
}

struct BatchGuard<'a>(&'a BatchLock);

impl BatchLock {
    fn acquire(&self) -> BatchGuard<'_> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.busy {
            st.waiting += 1;
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiting -= 1;
        }
        st.busy = true;
        BatchGuard(self)
    }
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        st.busy = false;
        // Counted under the same lock as the wait, so no waiter can be missed.
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            self.0.freed.notify_one();
        }
    }
}

impl Engine {
    fn wrap(net: Network) -> Engine {
        Engine {
            n_layers: net.layers().len(),
            n_in: net.n_in(),
            n_out: net.n_out(),
            seed: net.seed(),
            inner: RwLock::new(net),
            readers_waiting: AtomicUsize::new(0),
            learning: BatchLock::default(),
            broken: Broken::default(),
        }
    }

    // Only ever called without the GIL (inside `compute`). A panic never happens on validated
    // input; if one did, `compute` has marked the engine broken, so poisoning adds nothing.
    fn read(&self) -> RwLockReadGuard<'_, Network> {
        self.readers_waiting.fetch_add(1, Ordering::SeqCst);
        let guard = self.inner.read().unwrap_or_else(|e| e.into_inner());
        self.readers_waiting.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// Between two slices of a `learn` batch (lock released): wait, at most `READER_GRACE`,
    /// until the readers queued behind the last slice have the lock. Without it the learner,
    /// still on the CPU, re-locks before a woken reader is scheduled, and on a busy machine a
    /// `predict` waited through many slices (1.4 s measured, against 20 ms promised).
    fn let_readers_in(&self) {
        let until = Instant::now() + READER_GRACE;
        while self.readers_waiting.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::yield_now();
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Network> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `n` samples, learned in slices of at most `LEARN_SLICE` with the GIL released; one
    /// learner at a time for the whole batch (`learning`, taken without the GIL with the first
    /// slice); the batch is checked before anything changes. Both happen in the same release of
    /// the GIL as the first slice: a single sample pays for one.
    fn learn_batch(
        &self,
        py: Python<'_>,
        xs: &[f32],
        ts: &[f32],
        n: usize,
        ms: Option<&[bool]>,
        replay: usize,
    ) -> PyResult<f64> {
        let mut batch: Option<BatchGuard<'_>> = None;
        let mut next = 0;
        let mut total = 0.0f64;
        loop {
            let (at, sum) = self.compute(py, true, || {
                let mut guard = if batch.is_none() {
                    let learning = self.learning.acquire();
                    let guard = self.write();
                    guard.check_learn(xs, ts, n, ms, replay)?;
                    batch = Some(learning);
                    guard
                } else {
                    self.let_readers_in();
                    self.write()
                };
                let net: &mut Network = &mut guard;
                // The slice ends after its first whole sample past the deadline, so a slice of
                // one sample needs none (two clock reads less per single-sample `learn`).
                let deadline = (n - next > 1).then(|| Instant::now() + LEARN_SLICE);
                Ok::<_, crate::error::LpnError>(pool::install(net.slots(), || {
                    net.learn_samples(xs, ts, ms, replay, next, n, deadline)
                }))
            })??;
            next = at;
            total += sum;
            if next >= n {
                break;
            }
            // Ctrl-C: the samples learned so far stay learned, none is half learned.
            py.check_signals()?;
        }
        Ok(if n > 0 { total / n as f64 } else { 0.0 })
    }

    /// Run `f` with the GIL released (`detach::Broken::compute`): a panic (a bug) becomes a
    /// `RuntimeError`, and when `mutates` the engine refuses every later call rather than serve
    /// a state that may be half updated.
    fn compute<R: Send>(
        &self,
        py: Python<'_>,
        mutates: bool,
        f: impl FnOnce() -> R + Send,
    ) -> PyResult<R> {
        self.broken.compute(py, "network", mutates, f)
    }

    /// One sample's output (the engine checks `x` is finite), the GIL released.
    fn predict_sample(&self, py: Python<'_>, xs: &[f32]) -> PyResult<Vec<f32>> {
        Ok(self.compute(py, false, || {
            let guard = self.read();
            let net: &Network = &guard;
            pool::install(net.slots(), || net.predict(xs, 1, None))
        })??)
    }

    fn check_layer(&self, layer: usize) -> PyResult<()> {
        let n = self.n_layers;
        if layer >= n {
            return Err(PyValueError::new_err(format!(
                "layer index {layer} is out of range for a network of {n} layers"
            )));
        }
        Ok(())
    }
}

/// `learn_one` copies a sample onto the stack when `n_in + n_out` is at most this.
const COPY_ONE: usize = 256;

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, specs_json: &str, config_json: &str, seed: u64) -> PyResult<Self> {
        let specs = config::specs_from_json(specs_json)?;
        let config: LearnConfig = config::from_json("config", config_json)?;
        let net = detach::run(py, || {
            pool::install(usize::MAX, || Network::new(specs, config, seed))
        })??;
        Ok(Engine::wrap(net))
    }

    /// (B, n_in) float32 → (B, n_out) float32; `mask` is None, (n_out,) or (B, n_out) flattened.
    #[pyo3(signature = (x, mask=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        mask: Option<PyReadonlyArray1<'py, bool>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let n = x.shape()[0];
        let xs = x.as_slice()?;
        let ms = match &mask {
            Some(m) => Some(m.as_slice()?),
            None => None,
        };
        let (n_in, n_out) = (self.n_in, self.n_out);
        // Validate the whole input first (the error must not depend on where slices fall),
        // then predict in slices with a check for Ctrl-C in between.
        if xs.len() != n * n_in {
            return Err(PyValueError::new_err(format!(
                "x has {} values, expected {n} samples x n_in = {n_in}",
                xs.len()
            )));
        }
        if let Some(m) = ms {
            if m.len() != n_out && m.len() != n * n_out {
                return Err(PyValueError::new_err(format!(
                    "mask has {} entries, expected n_out = {n_out} (or {n_out} per sample)",
                    m.len()
                )));
            }
        }
        let per_sample = self.compute(py, false, || {
            crate::network::check_finite("x", xs).map(|_| self.read().slots().max(1))
        })??;
        let step = (PREDICT_SLICE_WORK / per_sample).max(1);
        let mut out = Vec::with_capacity(if step >= n { 0 } else { n * n_out });
        let mut s = 0;
        while s < n {
            let e = (s + step).min(n);
            let m = ms.map(|m| {
                if m.len() == n_out {
                    m
                } else {
                    &m[s * n_out..e * n_out]
                }
            });
            let part = self.compute(py, false, || {
                let guard = self.read();
                let net: &Network = &guard;
                pool::install(net.slots(), || {
                    net.predict(&xs[s * n_in..e * n_in], e - s, m)
                })
            })??;
            if s == 0 && e == n {
                out = part; // one slice: the engine's buffer is the answer, no copy
            } else {
                out.extend_from_slice(&part);
            }
            s = e;
            if s < n {
                py.check_signals()?;
            }
        }
        Ok(numpy::ndarray::Array2::from_shape_vec((n, n_out), out)
            .expect("shape matches")
            .into_pyarray(py))
    }

    /// One unmasked sample, if `x` is a C-contiguous float32 vector of `n_in` values: its
    /// `(n_out,)` output. None (nothing done) for anything else, which the caller sends
    /// through its general checks instead. The single-sample `predict`'s fast path: no
    /// reshapes, no Python-side checks, one release of the GIL.
    fn predict_one<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyArray1<f32>>>> {
        let Ok(x) = x.cast::<PyArray1<f32>>() else {
            return Ok(None);
        };
        if x.len() != self.n_in {
            return Ok(None);
        }
        let out = if self.n_in <= COPY_ONE {
            // Copied under the GIL, as in `learn_one`.
            // SAFETY: the slice is read only here, under the GIL, and not kept.
            let Ok(xs) = (unsafe { x.as_slice() }) else {
                return Ok(None);
            };
            let mut buf = [0.0f32; COPY_ONE];
            let xb = &mut buf[..xs.len()];
            xb.copy_from_slice(xs);
            self.predict_sample(py, xb)?
        } else {
            let Ok(x) = x.try_readonly() else {
                return Ok(None);
            };
            let Ok(xs) = x.as_slice() else {
                return Ok(None);
            };
            self.predict_sample(py, xs)?
        };
        Ok(Some(out.into_pyarray(py)))
    }

    #[pyo3(signature = (x, t, mask=None, replay=0))]
    fn learn<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        t: PyReadonlyArray2<'py, f32>,
        mask: Option<PyReadonlyArray1<'py, bool>>,
        replay: usize,
    ) -> PyResult<f64> {
        let n = x.shape()[0];
        if t.shape()[0] != n {
            return Err(PyValueError::new_err(format!(
                "x has {n} samples but t has {}",
                t.shape()[0]
            )));
        }
        let ms = match &mask {
            Some(m) => Some(m.as_slice()?),
            None => None,
        };
        self.learn_batch(py, x.as_slice()?, t.as_slice()?, n, ms, replay)
    }

    /// One unmasked sample without replay, if `x` and `t` are C-contiguous float32 vectors of
    /// `n_in` and `n_out` values; None (nothing done) for anything else, which the caller
    /// sends through its general checks instead. The online loop's fast path: no reshapes and
    /// no Python-side checks for the common case.
    fn learn_one<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: &Bound<'py, PyAny>,
    ) -> PyResult<Option<f64>> {
        let (Ok(x), Ok(t)) = (x.cast::<PyArray1<f32>>(), t.cast::<PyArray1<f32>>()) else {
            return Ok(None);
        };
        if x.len() != self.n_in || t.len() != self.n_out {
            return Ok(None);
        }
        if self.n_in + self.n_out <= COPY_ONE {
            // Small vectors are copied while the GIL is held, and the engine learns from the
            // copy with the GIL released: no Python code can write to them during the copy,
            // and no borrow flag is taken (rust-numpy's borrow tracking cost more than the
            // copy). A strided or misaligned view: the general path copies it.
            // SAFETY: the slices are read only here, under the GIL, and not kept.
            let (Ok(xs), Ok(ts)) = (unsafe { x.as_slice() }, unsafe { t.as_slice() }) else {
                return Ok(None);
            };
            let mut buf = [0.0f32; COPY_ONE];
            let (xb, rest) = buf.split_at_mut(xs.len());
            xb.copy_from_slice(xs);
            rest[..ts.len()].copy_from_slice(ts);
            let (xb, tb) = (&*xb, &rest[..ts.len()]);
            return self.learn_batch(py, xb, tb, 1, None, 0).map(Some);
        }
        // A borrow refused (an array being written elsewhere) or a strided view: the general
        // path copies it or names the conflict.
        let (Ok(x), Ok(t)) = (x.try_readonly(), t.try_readonly()) else {
            return Ok(None);
        };
        let (Ok(xs), Ok(ts)) = (x.as_slice(), t.as_slice()) else {
            return Ok(None);
        };
        self.learn_batch(py, xs, ts, 1, None, 0).map(Some)
    }

    fn consolidate(&self, py: Python<'_>, strength: f32) -> PyResult<()> {
        Ok(self.compute(py, true, || {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.consolidate(strength))
        })??)
    }

    fn restructure(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        self.compute(py, true, || {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.restructure())
        })
    }

    /// Panics inside the engine, as a bug would (tests of the last line of defence only).
    fn _panic_for_tests(&self, py: Python<'_>, mutates: bool) -> PyResult<()> {
        self.compute(py, mutates, || {
            let _guard = self.write();
            panic!("deliberate panic for a test")
        })
    }

    fn contrastive_step<'py>(
        &self,
        py: Python<'py>,
        x_pos: PyReadonlyArray1<'py, f32>,
        x_neg: PyReadonlyArray1<'py, f32>,
        layer: usize,
    ) -> PyResult<(f64, f64)> {
        let (p, n) = (x_pos.as_slice()?, x_neg.as_slice()?);
        Ok(self.compute(py, true, || {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.contrastive_step(p, n, layer))
        })??)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (report, reports) = self.compute(py, false, || {
            let net = self.read();
            let reports: Vec<_> = (0..net.layers().len())
                .map(|k| net.layer_report(k))
                .collect();
            (net.report(), reports)
        })?;
        let d = stat_dict(py, report)?;
        let layers = reports
            .into_iter()
            .map(|r| stat_dict(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        d.set_item("layers", layers)?;
        Ok(d)
    }

    /// Live synapses of one layer, row by row: fresh arrays, never views of engine state.
    /// One entry per declared column (absent optional columns are empty), plus `post`.
    fn synapses<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_layer(layer)?;
        let (post, cols) = self.compute(py, false, || {
            let net = self.read();
            let a = net.layers()[layer].arena();
            let mut post = Vec::with_capacity(a.n_live());
            for j in 0..a.n_rows() {
                post.extend(std::iter::repeat_n(j as i64, a.row_len(j)));
            }
            (post, a.live_columns())
        })?;
        let mut post = Some(post);
        let d = PyDict::new(py);
        for (name, col) in cols {
            match col {
                // Indices as int64, like `post`, so that numpy arithmetic on them is safe.
                FlatVec::U32(v) => d.set_item(
                    name,
                    v.iter()
                        .map(|&i| i as i64)
                        .collect::<Vec<i64>>()
                        .into_pyarray(py),
                )?,
                FlatVec::F32(v) => d.set_item(name, v.into_pyarray(py))?,
            }
            if name == "pre" {
                if let Some(post) = post.take() {
                    d.set_item("post", post.into_pyarray(py))?;
                }
            }
        }
        Ok(d)
    }

    /// Per-row and per-layer learning state of one layer.
    fn layer_state<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_layer(layer)?;
        let (vecs, budget, steps, signal) = self.compute(py, false, || {
            let net = self.read();
            let l = &net.layers()[layer];
            let vecs: Vec<(&'static str, FlatVec)> = l
                .unit_vectors()
                .into_iter()
                .map(|(name, v)| {
                    let v = match v {
                        Flat::U32(v) => FlatVec::U32(v.to_vec()),
                        Flat::F32(v) => FlatVec::F32(v.to_vec()),
                    };
                    (name, v)
                })
                .collect();
            let b = l.budget();
            let budget = (b.fraction(), b.loss_avg(), b.has_loss_avg(), b.expanding());
            (vecs, budget, l.steps(), l.signal().name())
        })?;
        let d = PyDict::new(py);
        for (name, v) in vecs {
            match v {
                FlatVec::U32(v) => d.set_item(name, v.into_pyarray(py))?,
                FlatVec::F32(v) => d.set_item(name, v.into_pyarray(py))?,
            }
        }
        d.set_item("budget", budget.0)?;
        d.set_item("loss_avg", budget.1)?;
        d.set_item("has_loss_avg", budget.2)?;
        d.set_item("expanding", budget.3)?;
        d.set_item("steps", steps)?;
        d.set_item("signal", signal)?;
        Ok(d)
    }

    /// The fixed feedback matrix `F_h` (n_out of this layer × n_out of the network), or None.
    fn feedback<'py>(
        &self,
        py: Python<'py>,
        layer: usize,
    ) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        self.check_layer(layer)?;
        let n_final = self.n_out;
        let (rows, f) = self.compute(py, false, || {
            let net = self.read();
            let l = &net.layers()[layer];
            (l.n_out(), l.feedback().map(|f| f.to_vec()))
        })?;
        Ok(f.map(|f| {
            numpy::ndarray::Array2::from_shape_vec((rows, n_final), f)
                .expect("shape matches")
                .into_pyarray(py)
        }))
    }

    /// Positions of a layer's input and output units, `(n, 2)` each (x, y; y = 0.5 in 1-D).
    fn positions<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Pair<'py, PyArray2<f64>>> {
        self.check_layer(layer)?;
        let (pin, pout) = self.compute(py, false, || {
            let net = self.read();
            let l = &net.layers()[layer];
            let geo = l.geometry();
            let grab = |n: usize, f: &dyn Fn(usize) -> [f64; 2]| {
                let v: Vec<f64> = (0..n).flat_map(f).collect();
                numpy::ndarray::Array2::from_shape_vec((n, 2), v).expect("shape matches")
            };
            (
                grab(l.n_in(), &|k| geo.pos_in(k)),
                grab(l.n_out(), &|k| geo.pos_out(k)),
            )
        })?;
        Ok((pin.into_pyarray(py), pout.into_pyarray(py)))
    }

    /// Indices drawn into the replay buffer so far and its contents, for inspection.
    fn replay_buffer<'py>(&self, py: Python<'py>) -> PyResult<ReplayView<'py>> {
        let (x, t, mask, seen) = self.compute(py, false, || {
            let net = self.read();
            let r = net.reservoir();
            let mask: Vec<bool> = r.mask.iter().map(|&b| b != 0).collect();
            (r.x.clone(), r.t.clone(), mask, r.seen)
        })?;
        Ok((
            x.into_pyarray(py),
            t.into_pyarray(py),
            mask.into_pyarray(py),
            seen,
        ))
    }

    /// Buffer slots replayed during the last `learn` call, in order.
    fn last_replayed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let v = self.compute(py, false, || self.read().last_replayed().to_vec())?;
        Ok(v.into_pyarray(py))
    }

    /// The readout window's per-output index (1-based) of the last new sample with a
    /// positive target; empty unless `readout_window > 0`.
    fn readout_last<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let v = self.compute(py, false, || self.read().readout_last().to_vec())?;
        Ok(v.into_pyarray(py))
    }

    /// Samples offered to the replay buffer per class; empty unless
    /// `replay_policy = "balanced"`.
    fn replay_class_seen<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let v = self.compute(py, false, || self.read().reservoir().class_seen.clone())?;
        Ok(v.into_pyarray(py))
    }

    // Dimensions never change after construction: no lock.
    #[getter]
    fn n_layers(&self) -> usize {
        self.n_layers
    }

    #[getter]
    fn n_in(&self) -> usize {
        self.n_in
    }

    #[getter]
    fn n_out(&self) -> usize {
        self.n_out
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// An independent copy of the whole engine (deepcopy and tests).
    fn clone_engine(&self, py: Python<'_>) -> PyResult<Engine> {
        let net = self.compute(py, false, || self.read().clone())?;
        Ok(Engine::wrap(net))
    }

    /// True when every bit of learning state equals the other engine's.
    fn same_state(&self, py: Python<'_>, other: &Engine) -> PyResult<bool> {
        if std::ptr::eq(self, other) {
            return Ok(true);
        }
        self.compute(py, false, || {
            let a = self.read();
            let b = other.read();
            a.same_state(&b)
        })
    }

    /// The whole state as checkpoint bytes (safetensors; see `checkpoint.rs`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.compute(py, false, || checkpoint::to_bytes(&self.read()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// An engine from checkpoint bytes; `ValueError` naming the problem for anything malformed.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Engine> {
        let net = detach::run(py, || checkpoint::from_bytes(data))??;
        Ok(Engine::wrap(net))
    }

    /// Layer specs as JSON (what a loaded checkpoint was built from).
    fn specs_json(&self, py: Python<'_>) -> PyResult<String> {
        self.compute(py, false, || {
            let net = self.read();
            let specs: Vec<&LayerSpec> = net.layers().iter().map(|l| l.spec()).collect();
            serde_json::to_string(&specs).expect("specs are plain data")
        })
    }

    /// The learning config as JSON.
    fn config_json(&self, py: Python<'_>) -> PyResult<String> {
        self.compute(py, false, || {
            serde_json::to_string(self.read().config()).expect("config is plain data")
        })
    }

    /// New samples learned so far (cheap: `checkpoint_every` reads it after every `learn`).
    #[getter]
    fn samples(&self, py: Python<'_>) -> PyResult<u64> {
        self.compute(py, false, || self.read().counters().samples)
    }
}

fn stat_dict<'py>(py: Python<'py>, items: Vec<(&str, Stat)>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, v) in items {
        match v {
            Stat::Int(v) => d.set_item(name, v)?,
            Stat::Float(v) => d.set_item(name, v)?,
            Stat::Bool(v) => d.set_item(name, v)?,
            Stat::Text(v) => d.set_item(name, v)?,
        }
    }
    Ok(d)
}

/// Check a learning config given as JSON; returns it with every default filled in (JSON).
/// This is the engine's one validator: `lpn.LearnConfig` calls it at construction.
#[pyfunction]
fn validate_config(config_json: &str) -> PyResult<String> {
    let c: LearnConfig = config::from_json("config", config_json)?;
    c.validate()?;
    Ok(serde_json::to_string(&c).expect("config is plain data"))
}

/// Check one layer spec given as JSON; returns it with every default filled in (JSON).
#[pyfunction]
fn validate_spec(spec_json: &str) -> PyResult<String> {
    let s: LayerSpec = config::from_json("layer spec", spec_json)?;
    s.validate()?;
    Ok(serde_json::to_string(&s).expect("spec is plain data"))
}

/// The engine's default learning config, as JSON.
#[pyfunction]
fn config_defaults() -> String {
    serde_json::to_string(&LearnConfig::default()).expect("config is plain data")
}

/// The engine's default layer spec (n_in = n_out = 0, which `validate_spec` refuses), as JSON.
#[pyfunction]
fn spec_defaults() -> String {
    serde_json::to_string(&LayerSpec::new(0, 0)).expect("spec is plain data")
}

/// Positions `(n, 2)` of `n` units laid out as a layer side with `dims` and `shape` places
/// them (x, y; y = 0.5 in 1-D): the engine's geometry, for tasks and the reference.
#[pyfunction]
#[pyo3(signature = (n, dims=1, shape=None))]
fn unit_positions(
    py: Python<'_>,
    n: usize,
    dims: usize,
    shape: Option<(usize, usize)>,
) -> PyResult<Bound<'_, PyArray2<f64>>> {
    let mut spec = LayerSpec::new(n.max(1), 1);
    spec.dims = dims;
    spec.in_shape = shape;
    spec.validate()?;
    let shape = spec.shape_for(n, shape, "in")?;
    let v: Vec<f64> = (0..n).flat_map(|k| topology::position(shape, k)).collect();
    Ok(numpy::ndarray::Array2::from_shape_vec((n, 2), v)
        .expect("shape matches")
        .into_pyarray(py))
}

/// Distances `(m, n)` between positions `a` `(m, d)` and `b` `(n, d)`, `d` = 1 or 2 axes.
#[pyfunction]
#[pyo3(signature = (a, b, periodic=true))]
fn distances<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray2<'py, f64>,
    periodic: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (a, b) = (a.as_array(), b.as_array());
    let dims = a.shape()[1];
    if !(dims == 1 || dims == 2) || b.shape()[1] != dims {
        return Err(PyValueError::new_err(format!(
            "positions must have 1 or 2 columns each, got {} and {}",
            dims,
            b.shape()[1]
        )));
    }
    let point = |r: numpy::ndarray::ArrayView1<'_, f64>| [r[0], if dims == 2 { r[1] } else { 0.5 }];
    let (m, n) = (a.shape()[0], b.shape()[0]);
    let mut out = Vec::with_capacity(m * n);
    for ra in a.rows() {
        let pa = point(ra);
        for rb in b.rows() {
            out.push(topology::distance(dims, periodic, pa, point(rb)));
        }
    }
    Ok(numpy::ndarray::Array2::from_shape_vec((m, n), out)
        .expect("shape matches")
        .into_pyarray(py))
}

/// The largest distance the engine counts as within `radius` (neighbourhoods and growth).
#[pyfunction]
fn reach(radius: f64) -> f64 {
    topology::reach(radius)
}

/// Use `n` engine threads for every network from now on (0: the default, which honours
/// `RAYON_NUM_THREADS`, else one per core). Results are identical for any thread count.
#[pyfunction]
fn set_num_threads(py: Python<'_>, n: usize) -> PyResult<()> {
    detach::run(py, || pool::set_num_threads(n))?.map_err(PyValueError::new_err)
}

/// The number of threads the engine runs on.
#[pyfunction]
fn get_num_threads(py: Python<'_>) -> PyResult<usize> {
    detach::run(py, pool::num_threads)
}

/// Replays per new sample that `learn` accepts at most.
#[pyfunction]
fn max_replay() -> usize {
    crate::limits::MAX_REPLAY
}

#[pymodule]
fn _lpn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<crate::memory_py::Memory>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(max_replay, m)?)?;
    m.add_function(wrap_pyfunction!(validate_config, m)?)?;
    m.add_function(wrap_pyfunction!(validate_spec, m)?)?;
    m.add_function(wrap_pyfunction!(config_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(spec_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(unit_positions, m)?)?;
    m.add_function(wrap_pyfunction!(distances, m)?)?;
    m.add_function(wrap_pyfunction!(reach, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Before finalization starts, stop engine calls from re-entering the interpreter (see
    // `detach`: otherwise a daemon thread inside the engine can crash the process at exit).
    let at_exit = wrap_pyfunction!(detach::_at_exit, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (at_exit,))?;
    Ok(())
}
