//! The Python module `lpn._lpn`: thin wrappers that take numpy views, release the GIL around all
//! compute and return fresh numpy arrays. The Python package (`python/lpn`) adds validation of
//! dtypes and shapes and the user-facing classes.
use crate::checkpoint;
use crate::config::{LayerSpec, LearnConfig};
use crate::error::LpnError;
use crate::network::Network;
use crate::pool;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

impl From<LpnError> for PyErr {
    fn from(e: LpnError) -> PyErr {
        match e {
            LpnError::Value(m) => PyValueError::new_err(m),
            LpnError::Type(m) => PyTypeError::new_err(m),
            LpnError::Io(m) => PyOSError::new_err(m),
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
#[pyclass(frozen, module = "lpn._lpn", name = "Engine")]
pub struct Engine {
    inner: RwLock<Network>,
}

impl Engine {
    // A panic never happens mid-update on validated input; if one did, the state is still
    // memory-safe, so keep serving rather than poisoning the learner for ever.
    fn read(&self) -> RwLockReadGuard<'_, Network> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Network> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn check_layer(&self, layer: usize) -> PyResult<()> {
        let n = self.read().layers.len();
        if layer >= n {
            return Err(PyValueError::new_err(format!(
                "layer index {layer} is out of range for a network of {n} layers"
            )));
        }
        Ok(())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> PyResult<T> {
    serde_json::from_str(s).map_err(|e| PyValueError::new_err(format!("invalid {what}: {e}")))
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, specs_json: &str, config_json: &str, seed: u64) -> PyResult<Self> {
        let specs: Vec<LayerSpec> = parse_json("layer specs", specs_json)?;
        let config: LearnConfig = parse_json("config", config_json)?;
        let net = py.detach(|| pool::install(usize::MAX, || Network::new(specs, config, seed)))?;
        Ok(Engine {
            inner: RwLock::new(net),
        })
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
        let (out, n_out) = py.detach(|| {
            let guard = self.read();
            let net: &Network = &guard;
            let n_out = net.n_out();
            pool::install(net.slots(), || net.predict(xs, n, ms)).map(|o| (o, n_out))
        })?;
        Ok(numpy::ndarray::Array2::from_shape_vec((n, n_out), out)
            .expect("shape matches")
            .into_pyarray(py))
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
        let (xs, ts) = (x.as_slice()?, t.as_slice()?);
        let ms = match &mask {
            Some(m) => Some(m.as_slice()?),
            None => None,
        };
        Ok(py.detach(|| {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.learn(xs, ts, n, ms, replay))
        })?)
    }

    fn consolidate(&self, py: Python<'_>, strength: f32) -> PyResult<()> {
        Ok(py.detach(|| {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.consolidate(strength))
        })?)
    }

    fn restructure(&self, py: Python<'_>) -> (u64, u64) {
        py.detach(|| {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.restructure())
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
        Ok(py.detach(|| {
            let mut guard = self.write();
            let net: &mut Network = &mut guard;
            pool::install(net.slots(), || net.contrastive_step(p, n, layer))
        })?)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let net = self.read();
        let d = PyDict::new(py);
        d.set_item("steps", net.steps)?;
        d.set_item("samples", net.samples)?;
        d.set_item("replays", net.replays)?;
        d.set_item("replay_buffer", net.reservoir.len())?;
        d.set_item("contrastive_steps", net.contrastive_steps)?;
        d.set_item("goodness_pos", net.last_goodness.0)?;
        d.set_item("goodness_neg", net.last_goodness.1)?;
        let mut layers = Vec::new();
        for k in 0..net.layers.len() {
            let r = net.layer_report(k);
            let l = PyDict::new(py);
            l.set_item("synapses", r.synapses)?;
            l.set_item("capacity", r.capacity)?;
            l.set_item("budget", r.budget)?;
            l.set_item("loss_avg", r.loss_avg)?;
            l.set_item("expanding", r.expanding)?;
            l.set_item("steps", r.steps)?;
            l.set_item("touched", r.touched)?;
            l.set_item("touched_total", r.touched_total)?;
            l.set_item("touched_fraction", r.touched_fraction)?;
            l.set_item("pruned", r.pruned)?;
            l.set_item("grown", r.grown)?;
            l.set_item("pruned_total", r.pruned_total)?;
            l.set_item("grown_total", r.grown_total)?;
            l.set_item("signal", r.signal)?;
            layers.push(l);
        }
        d.set_item("layers", layers)?;
        Ok(d)
    }

    /// Live synapses of one layer, row by row: fresh arrays, never views of engine state.
    fn synapses<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_layer(layer)?;
        let net = self.read();
        let a = &net.layers[layer].arena;
        let idx = a.live_indices();
        let mut post = Vec::with_capacity(idx.len());
        for j in 0..a.n_rows() {
            post.extend(std::iter::repeat_n(j as i64, a.row_len[j] as usize));
        }
        let pick = |v: &Vec<f32>| idx.iter().map(|&k| v[k]).collect::<Vec<f32>>();
        let d = PyDict::new(py);
        d.set_item(
            "pre",
            idx.iter()
                .map(|&k| a.pre[k] as i64)
                .collect::<Vec<i64>>()
                .into_pyarray(py),
        )?;
        d.set_item("post", post.into_pyarray(py))?;
        d.set_item("weight", pick(&a.weight).into_pyarray(py))?;
        d.set_item("short_trail", pick(&a.short_trail).into_pyarray(py))?;
        d.set_item("long_trail", pick(&a.long_trail).into_pyarray(py))?;
        d.set_item("consolidation", pick(&a.consolidation).into_pyarray(py))?;
        d.set_item("anchor", pick(&a.anchor).into_pyarray(py))?;
        Ok(d)
    }

    /// Per-row and per-layer learning state of one layer.
    fn layer_state<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_layer(layer)?;
        let net = self.read();
        let l = &net.layers[layer];
        let d = PyDict::new(py);
        d.set_item("bias", l.bias.clone().into_pyarray(py))?;
        d.set_item("error_trace", l.error_trace.clone().into_pyarray(py))?;
        d.set_item("activity_trace", l.activity_trace.clone().into_pyarray(py))?;
        d.set_item("max_fan_in", l.max_fan_in.clone().into_pyarray(py))?;
        d.set_item("budget", l.budget.fraction)?;
        d.set_item("loss_avg", l.budget.loss_avg)?;
        d.set_item("has_loss_avg", l.budget.has_loss_avg)?;
        d.set_item("expanding", l.budget.expanding)?;
        d.set_item("steps", l.steps)?;
        d.set_item("signal", l.signal.name())?;
        Ok(d)
    }

    /// The fixed feedback matrix `F_h` (n_out of this layer × n_out of the network), or None.
    fn feedback<'py>(
        &self,
        py: Python<'py>,
        layer: usize,
    ) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        self.check_layer(layer)?;
        let net = self.read();
        let n_final = net.n_out();
        let l = &net.layers[layer];
        Ok(l.feedback.as_ref().map(|f| {
            numpy::ndarray::Array2::from_shape_vec((l.n_out(), n_final), f.clone())
                .expect("shape matches")
                .into_pyarray(py)
        }))
    }

    /// Positions of a layer's input and output units, `(n, 2)` each (x, y; y = 0.5 in 1-D).
    fn positions<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Pair<'py, PyArray2<f64>>> {
        self.check_layer(layer)?;
        let net = self.read();
        let l = &net.layers[layer];
        let grab = |n: usize, f: &dyn Fn(usize) -> [f64; 2]| {
            let v: Vec<f64> = (0..n).flat_map(f).collect();
            numpy::ndarray::Array2::from_shape_vec((n, 2), v).expect("shape matches")
        };
        let pin = grab(l.n_in(), &|k| l.geo.pos_in(k));
        let pout = grab(l.n_out(), &|k| l.geo.pos_out(k));
        Ok((pin.into_pyarray(py), pout.into_pyarray(py)))
    }

    /// Indices drawn into the replay buffer so far and its contents, for inspection.
    fn replay_buffer<'py>(&self, py: Python<'py>) -> ReplayView<'py> {
        let net = self.read();
        let r = &net.reservoir;
        (
            r.x.clone().into_pyarray(py),
            r.t.clone().into_pyarray(py),
            r.mask
                .iter()
                .map(|&b| b != 0)
                .collect::<Vec<bool>>()
                .into_pyarray(py),
            r.seen,
        )
    }

    /// Buffer slots replayed during the last `learn` call, in order.
    fn last_replayed<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.read().last_replayed.clone().into_pyarray(py)
    }

    #[getter]
    fn n_layers(&self) -> usize {
        self.read().layers.len()
    }

    #[getter]
    fn n_in(&self) -> usize {
        self.read().n_in()
    }

    #[getter]
    fn n_out(&self) -> usize {
        self.read().n_out()
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.read().seed
    }

    /// An independent copy of the whole engine (deepcopy and tests).
    fn clone_engine(&self, py: Python<'_>) -> Engine {
        let net = py.detach(|| self.read().clone());
        Engine {
            inner: RwLock::new(net),
        }
    }

    /// True when every bit of learning state equals the other engine's.
    fn same_state(&self, py: Python<'_>, other: &Engine) -> bool {
        py.detach(|| {
            let a = self.read();
            let b = other.read();
            a.same_state(&b)
        })
    }

    /// The whole state as checkpoint bytes (safetensors; see `checkpoint.rs`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| checkpoint::to_bytes(&self.read()));
        PyBytes::new(py, &bytes)
    }

    /// An engine from checkpoint bytes; `ValueError` naming the problem for anything malformed.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Engine> {
        let net = py.detach(|| checkpoint::from_bytes(data))?;
        Ok(Engine {
            inner: RwLock::new(net),
        })
    }

    /// Layer specs as JSON (what a loaded checkpoint was built from).
    fn specs_json(&self) -> String {
        let net = self.read();
        let specs: Vec<&LayerSpec> = net.layers.iter().map(|l| &l.spec).collect();
        serde_json::to_string(&specs).expect("specs are plain data")
    }

    /// The learning config as JSON.
    fn config_json(&self) -> String {
        serde_json::to_string(&self.read().config).expect("config is plain data")
    }

    /// New samples learned so far (cheap: `checkpoint_every` reads it after every `learn`).
    #[getter]
    fn samples(&self) -> u64 {
        self.read().samples
    }
}

/// Use `n` engine threads for every network from now on (0: the default, which honours
/// `RAYON_NUM_THREADS`, else one per core). Results are identical for any thread count.
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    pool::set_num_threads(n).map_err(PyValueError::new_err)
}

/// The number of threads the engine runs on.
#[pyfunction]
fn get_num_threads() -> usize {
    pool::num_threads()
}

#[pymodule]
fn _lpn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
