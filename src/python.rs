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
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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
        let n = self.read().layers().len();
        if layer >= n {
            return Err(PyValueError::new_err(format!(
                "layer index {layer} is out of range for a network of {n} layers"
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, specs_json: &str, config_json: &str, seed: u64) -> PyResult<Self> {
        let specs = config::specs_from_json(specs_json)?;
        let config: LearnConfig = config::from_json("config", config_json)?;
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
        let d = stat_dict(py, net.report())?;
        let layers = (0..net.layers().len())
            .map(|k| stat_dict(py, net.layer_report(k)))
            .collect::<PyResult<Vec<_>>>()?;
        d.set_item("layers", layers)?;
        Ok(d)
    }

    /// Live synapses of one layer, row by row: fresh arrays, never views of engine state.
    /// One entry per declared column (absent optional columns are empty), plus `post`.
    fn synapses<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_layer(layer)?;
        let net = self.read();
        let a = net.layers()[layer].arena();
        let mut post = Vec::with_capacity(a.n_live());
        for j in 0..a.n_rows() {
            post.extend(std::iter::repeat_n(j as i64, a.row_len(j)));
        }
        let d = PyDict::new(py);
        for (name, col) in a.live_columns() {
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
                d.set_item("post", std::mem::take(&mut post).into_pyarray(py))?;
            }
        }
        Ok(d)
    }

    /// Per-row and per-layer learning state of one layer.
    fn layer_state<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_layer(layer)?;
        let net = self.read();
        let l = &net.layers()[layer];
        let d = PyDict::new(py);
        for (name, v) in l.unit_vectors() {
            match v {
                Flat::U32(v) => d.set_item(name, v.to_vec().into_pyarray(py))?,
                Flat::F32(v) => d.set_item(name, v.to_vec().into_pyarray(py))?,
            }
        }
        let b = l.budget();
        d.set_item("budget", b.fraction())?;
        d.set_item("loss_avg", b.loss_avg())?;
        d.set_item("has_loss_avg", b.has_loss_avg())?;
        d.set_item("expanding", b.expanding())?;
        d.set_item("steps", l.steps())?;
        d.set_item("signal", l.signal().name())?;
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
        let l = &net.layers()[layer];
        Ok(l.feedback().map(|f| {
            numpy::ndarray::Array2::from_shape_vec((l.n_out(), n_final), f.to_vec())
                .expect("shape matches")
                .into_pyarray(py)
        }))
    }

    /// Positions of a layer's input and output units, `(n, 2)` each (x, y; y = 0.5 in 1-D).
    fn positions<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Pair<'py, PyArray2<f64>>> {
        self.check_layer(layer)?;
        let net = self.read();
        let l = &net.layers()[layer];
        let geo = l.geometry();
        let grab = |n: usize, f: &dyn Fn(usize) -> [f64; 2]| {
            let v: Vec<f64> = (0..n).flat_map(f).collect();
            numpy::ndarray::Array2::from_shape_vec((n, 2), v).expect("shape matches")
        };
        let pin = grab(l.n_in(), &|k| geo.pos_in(k));
        let pout = grab(l.n_out(), &|k| geo.pos_out(k));
        Ok((pin.into_pyarray(py), pout.into_pyarray(py)))
    }

    /// Indices drawn into the replay buffer so far and its contents, for inspection.
    fn replay_buffer<'py>(&self, py: Python<'py>) -> ReplayView<'py> {
        let net = self.read();
        let r = net.reservoir();
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
        self.read().last_replayed().to_vec().into_pyarray(py)
    }

    #[getter]
    fn n_layers(&self) -> usize {
        self.read().layers().len()
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
        self.read().seed()
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
        let specs: Vec<&LayerSpec> = net.layers().iter().map(|l| l.spec()).collect();
        serde_json::to_string(&specs).expect("specs are plain data")
    }

    /// The learning config as JSON.
    fn config_json(&self) -> String {
        serde_json::to_string(self.read().config()).expect("config is plain data")
    }

    /// New samples learned so far (cheap: `checkpoint_every` reads it after every `learn`).
    #[getter]
    fn samples(&self) -> u64 {
        self.read().counters().samples
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
    m.add_class::<crate::memory_py::Memory>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(validate_config, m)?)?;
    m.add_function(wrap_pyfunction!(validate_spec, m)?)?;
    m.add_function(wrap_pyfunction!(config_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(spec_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(unit_positions, m)?)?;
    m.add_function(wrap_pyfunction!(distances, m)?)?;
    m.add_function(wrap_pyfunction!(reach, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
