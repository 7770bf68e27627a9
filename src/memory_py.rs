//! `lpn._lpn.Memory`: the binding of `memory::RecallMemory`. Arrays in, fresh arrays out; the
//! lock is taken and all compute runs with the GIL released. `lpn.memory.RecallMemory` adds the
//! clock, type checks and the Python conveniences.
//!
//! The same protections as `Engine` (`python.rs`), through the same helpers (`python::detach`):
//! locks only ever taken without the GIL, a panic caught and reported as a bug (a memory whose
//! update panicked refuses later calls rather than serve a half-updated state), engine code run
//! on the fork-safe pool (`pool.rs`) — never on rayon's global pool, which a forked child
//! inherits without its threads — and long recalls in slices with a check for Ctrl-C between.
//! Every update validates its whole input before changing anything (`memory/mod.rs`).
use crate::error::LpnError;
use crate::memory::{save, MemoryConfig, RecallMemory};
use crate::pool;
use crate::python::detach::{self, Broken};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

// The crate's one mapping of engine errors to Python exceptions (in `python.rs`).
fn err(e: LpnError) -> PyErr {
    e.into()
}

/// About this many multiply-adds per `recall` slice between checks for signals.
const RECALL_SLICE_WORK: usize = 1 << 24;

/// Frozen: every change goes through the lock, so one memory can serve many Python threads
/// (recalls share the read lock). `dim` never changes and is read without the lock.
#[pyclass(frozen, module = "lpn._lpn", name = "Memory")]
pub struct Memory {
    inner: RwLock<RecallMemory>,
    broken: Broken,
    dim: usize,
}

impl Memory {
    fn wrap(m: RecallMemory) -> Memory {
        Memory {
            dim: m.config().dim,
            inner: RwLock::new(m),
            broken: Broken::default(),
        }
    }

    // Only ever called without the GIL (inside `compute`). A panic that interrupted an update
    // marks the memory broken, so poisoning adds nothing.
    fn read(&self) -> RwLockReadGuard<'_, RecallMemory> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, RecallMemory> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn compute<R: Send>(
        &self,
        py: Python<'_>,
        mutates: bool,
        f: impl FnOnce() -> R + Send,
    ) -> PyResult<R> {
        self.broken.compute(py, "memory", mutates, f)
    }

    fn check_width(&self, what: &str, a: &PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let (dim, w) = (self.dim, a.shape()[1]);
        if w != dim {
            return Err(PyValueError::new_err(format!(
                "{what} has {w} columns, expected dim = {dim}"
            )));
        }
        Ok(())
    }
}

type Ranked<'py> = (Bound<'py, PyArray2<u64>>, Bound<'py, PyArray2<f32>>);
type Info<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

#[pymethods]
impl Memory {
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let cfg: MemoryConfig = serde_json::from_str(config_json)
            .map_err(|e| PyValueError::new_err(format!("invalid memory config: {e}")))?;
        let m = detach::run(py, || pool::install(usize::MAX, || RecallMemory::new(cfg)))?
            .map_err(err)?;
        Ok(Memory::wrap(m))
    }

    #[pyo3(signature = (x, ids, now))]
    fn observe<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, u64>>,
        now: f64,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        self.check_width("vectors", &x)?;
        let n = x.shape()[0];
        let xs = x.as_slice()?;
        let ids = match &ids {
            Some(a) => Some(a.as_slice()?),
            None => None,
        };
        let out = self
            .compute(py, true, || {
                let mut m = self.write();
                let m: &mut RecallMemory = &mut m;
                pool::install(usize::MAX, || m.observe(xs, n, ids, now))
            })?
            .map_err(err)?;
        Ok(out.into_pyarray(py))
    }

    /// (B, dim) queries → ids (B, k') and scores (B, k'), k' = min(k, len), best first.
    fn recall<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray2<'py, f32>,
        k: i64,
        now: f64,
    ) -> PyResult<Ranked<'py>> {
        if k <= 0 {
            return Err(PyValueError::new_err(format!(
                "k must be a positive number of results, got {k}"
            )));
        }
        self.check_width("query", &q)?;
        let b = q.shape()[0];
        let qs = q.as_slice()?;
        let dim = self.dim;
        // Validate everything first (the error must not depend on where slices fall), then
        // recall in slices of queries with a check for Ctrl-C in between: queries are
        // independent, so slicing changes no result.
        let (step, k_all) = self
            .compute(py, false, || {
                let m = self.read();
                crate::memory::check_now(now)?;
                crate::memory::check_finite("query", qs, dim)?;
                let per_query = (m.slots() + m.len() * dim).max(1);
                Ok((
                    (RECALL_SLICE_WORK / per_query).max(1),
                    (k as usize).min(m.len()),
                ))
            })?
            .map_err(err)?;
        let mut hits = Vec::with_capacity(b);
        let mut s = 0;
        while s < b {
            let e = (s + step).min(b);
            // Always on the engine's pool: recall's parallel loops would otherwise run on
            // rayon's global pool, which is not fork-safe.
            let part = self
                .compute(py, false, || {
                    let m = self.read();
                    // No more results than items: a huge `k` must not size any buffer.
                    let k = (k as usize).min(m.len()).max(1);
                    pool::install(usize::MAX, || {
                        m.recall(&qs[s * dim..e * dim], e - s, k, now)
                    })
                })?
                .map_err(err)?;
            hits.extend(part);
            s = e;
            if s < b {
                py.check_signals()?;
            }
        }
        // Rows are equally long unless another thread changed the memory between slices: then
        // every row keeps its best `kk` (each row is best first).
        let kk = hits.iter().map(Vec::len).min().unwrap_or(k_all);
        let mut ids = Vec::with_capacity(b * kk);
        let mut scores = Vec::with_capacity(b * kk);
        for h in &hits {
            ids.extend(h[..kk].iter().map(|c| c.id));
            scores.extend(h[..kk].iter().map(|c| c.score));
        }
        let shape = (b, kk);
        Ok((
            numpy::ndarray::Array2::from_shape_vec(shape, ids)
                .expect("shape matches")
                .into_pyarray(py),
            numpy::ndarray::Array2::from_shape_vec(shape, scores)
                .expect("shape matches")
                .into_pyarray(py),
        ))
    }

    fn score<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f32>,
        candidates: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        self.check_width("candidates", &candidates)?;
        let m_rows = candidates.shape()[0];
        let (qs, cs) = (q.as_slice()?, candidates.as_slice()?);
        let out = self
            .compute(py, false, || {
                let m = self.read();
                pool::install(usize::MAX, || m.score(qs, cs, m_rows))
            })?
            .map_err(err)?;
        Ok(out.into_pyarray(py))
    }

    fn reinforce(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, u64>, now: f64) -> PyResult<()> {
        let ids = ids.as_slice()?;
        self.compute(py, true, || {
            let mut m = self.write();
            let m: &mut RecallMemory = &mut m;
            pool::install(usize::MAX, || m.reinforce(ids, now))
        })?
        .map_err(err)
    }

    fn forget(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, u64>) -> PyResult<()> {
        let ids = ids.as_slice()?;
        self.compute(py, true, || {
            let mut m = self.write();
            let m: &mut RecallMemory = &mut m;
            pool::install(usize::MAX, || m.forget(ids))
        })?
        .map_err(err)
    }

    fn decay<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        threshold: f64,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let out = self
            .compute(py, true, || {
                let mut m = self.write();
                let m: &mut RecallMemory = &mut m;
                pool::install(usize::MAX, || m.decay(now, threshold))
            })?
            .map_err(err)?;
        Ok(out.into_pyarray(py))
    }

    /// Per id: uses, tier (0 working, 1 episodic, 2 semantic), last access, strength at `now`.
    fn info<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, u64>,
        now: f64,
    ) -> PyResult<Info<'py>> {
        let ids = ids.as_slice()?;
        let info = self
            .compute(py, false, || self.read().info(ids, now))?
            .map_err(err)?;
        Ok((
            info.iter()
                .map(|i| i.uses)
                .collect::<Vec<_>>()
                .into_pyarray(py),
            info.iter()
                .map(|i| i.tier as u8)
                .collect::<Vec<_>>()
                .into_pyarray(py),
            info.iter()
                .map(|i| i.last_access)
                .collect::<Vec<_>>()
                .into_pyarray(py),
            info.iter()
                .map(|i| i.strength)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        ))
    }

    fn link(&self, py: Python<'_>, a: u64, b: u64) -> PyResult<f32> {
        self.compute(py, false, || self.read().link(a, b))?
            .map_err(err)
    }

    fn vector<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let v = self
            .compute(py, false, || self.read().vector(id).map(<[f32]>::to_vec))?
            .map_err(err)?;
        Ok(v.into_pyarray(py))
    }

    fn ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        Ok(self
            .compute(py, false, || self.read().ids().to_vec())?
            .into_pyarray(py))
    }

    fn contains(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        self.compute(py, false, || self.read().contains(id))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.compute(py, false, || self.read().len())
    }

    fn config_json(&self, py: Python<'_>) -> PyResult<String> {
        self.compute(py, false, || {
            serde_json::to_string(self.read().config()).expect("config is plain data")
        })
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.compute(py, false, || save::to_bytes(&self.read()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Memory> {
        // On the pool: loading recomputes the codes with parallel loops.
        let m = detach::run(py, || pool::install(usize::MAX, || save::from_bytes(data)))?
            .map_err(err)?;
        Ok(Memory::wrap(m))
    }

    /// Panics inside the memory, as a bug would (tests of the last line of defence only).
    fn _panic_for_tests(&self, py: Python<'_>, mutates: bool) -> PyResult<()> {
        self.compute(py, mutates, || {
            let _guard = self.write();
            panic!("deliberate panic for a test")
        })
    }
}
