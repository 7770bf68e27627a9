//! `lpn._lpn.Memory`: the binding of `memory::RecallMemory`. Arrays in, fresh arrays out; the
//! lock is taken and all compute runs with the GIL released. `lpn.memory.RecallMemory` adds the
//! clock, type checks and the Python conveniences.
use crate::error::LpnError;
use crate::memory::{save, MemoryConfig, RecallMemory};
use crate::pool;
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

/// Frozen: every change goes through the lock, so one memory can serve many Python threads
/// (recalls share the read lock).
#[pyclass(frozen, module = "lpn._lpn", name = "Memory")]
pub struct Memory {
    inner: RwLock<RecallMemory>,
}

impl Memory {
    // Updates validate before mutating, so a panic cannot leave half an update: keep serving.
    fn read(&self) -> RwLockReadGuard<'_, RecallMemory> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, RecallMemory> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
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
        let m = py.detach(|| RecallMemory::new(cfg)).map_err(err)?;
        Ok(Memory {
            inner: RwLock::new(m),
        })
    }

    #[pyo3(signature = (x, ids, now))]
    fn observe<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, u64>>,
        now: f64,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let n = x.shape()[0];
        let xs = x.as_slice()?;
        let ids = match &ids {
            Some(a) => Some(a.as_slice()?),
            None => None,
        };
        let out = py
            .detach(|| {
                let mut m = self.write();
                let m: &mut RecallMemory = &mut m;
                pool::install(usize::MAX, || m.observe(xs, n, ids, now))
            })
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
        let b = q.shape()[0];
        let qs = q.as_slice()?;
        let (hits, kk) = py
            .detach(|| {
                let m = self.read();
                let kk = (k as usize).min(m.len());
                pool::install(m.slots().saturating_mul(b), || {
                    m.recall(qs, b, k as usize, now)
                })
                .map(|h| (h, kk))
            })
            .map_err(err)?;
        let mut ids = Vec::with_capacity(b * kk);
        let mut scores = Vec::with_capacity(b * kk);
        for h in &hits {
            ids.extend(h.iter().map(|c| c.id));
            scores.extend(h.iter().map(|c| c.score));
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
        let m_rows = candidates.shape()[0];
        let (qs, cs) = (q.as_slice()?, candidates.as_slice()?);
        let out = py
            .detach(|| {
                let m = self.read();
                pool::install(usize::MAX, || m.score(qs, cs, m_rows))
            })
            .map_err(err)?;
        Ok(out.into_pyarray(py))
    }

    fn reinforce(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, u64>, now: f64) -> PyResult<()> {
        let ids = ids.as_slice()?;
        py.detach(|| {
            let mut m = self.write();
            let m: &mut RecallMemory = &mut m;
            pool::install(usize::MAX, || m.reinforce(ids, now))
        })
        .map_err(err)
    }

    fn forget(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, u64>) -> PyResult<()> {
        let ids = ids.as_slice()?;
        py.detach(|| {
            let mut m = self.write();
            let m: &mut RecallMemory = &mut m;
            pool::install(usize::MAX, || m.forget(ids))
        })
        .map_err(err)
    }

    fn decay<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        threshold: f64,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let out = py
            .detach(|| {
                let mut m = self.write();
                let m: &mut RecallMemory = &mut m;
                pool::install(usize::MAX, || m.decay(now, threshold))
            })
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
        let info = py.detach(|| self.read().info(ids, now)).map_err(err)?;
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
        py.detach(|| self.read().link(a, b)).map_err(err)
    }

    fn vector<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let v = py
            .detach(|| self.read().vector(id).map(<[f32]>::to_vec))
            .map_err(err)?;
        Ok(v.into_pyarray(py))
    }

    fn ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        py.detach(|| self.read().ids().to_vec()).into_pyarray(py)
    }

    fn contains(&self, py: Python<'_>, id: u64) -> bool {
        py.detach(|| self.read().contains(id))
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| self.read().len())
    }

    fn config_json(&self, py: Python<'_>) -> String {
        py.detach(|| serde_json::to_string(self.read().config()).expect("config is plain data"))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| save::to_bytes(&self.read()));
        PyBytes::new(py, &bytes)
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Memory> {
        let m = py.detach(|| save::from_bytes(data)).map_err(err)?;
        Ok(Memory {
            inner: RwLock::new(m),
        })
    }
}
