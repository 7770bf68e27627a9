//! The memory as one safetensors file, in the project's checkpoint format.
//!
//! Layout. `__metadata__` holds `format = "lpn-memory"`, `format_version`, `lpn_version` and
//! `config` (the `MemoryConfig` as JSON). Tensors (1-D, little-endian):
//!
//! * `network` u8: the layer as an lpn network checkpoint (`checkpoint::to_bytes`)
//! * `items.ids` u64, `items.vectors` f32 `[n·dim]`, `items.uses` u32, `items.last_access` f64,
//!   `items.tier` u8, in storage order
//! * `links.a`, `links.b` u64 and `links.weight` f32: each link once, `a < b`, ascending
//! * `log.ids` u64 and `log.kinds` u8: what the layer learned, in order
//! * `next_id` u64 `[1]`
//!
//! Codes and the projection are recomputed (both are pure functions of the seed and the stored
//! vectors), so they cannot disagree with what was saved.
//!
//! Bytes are deterministic: safetensors orders tensors by name, and the JSON header is written
//! with sorted keys (`crate::header`, shared with checkpoints).
use super::{MemoryConfig, RecallMemory, Tier, LOG_LEARN, LOG_REHEARSE};
use crate::checkpoint::{self, le_bytes, LeScalar};
use crate::error::Result;
use crate::header::Format;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{HashMap, HashSet};

pub const FORMAT: &str = "lpn-memory";
pub const FORMAT_VERSION: u32 = 1;
const MEMORY: Format = Format::new(FORMAT, FORMAT_VERSION, "lpn memory file");

/// A tensor's dtype and little-endian bytes.
fn le<T: LeScalar>(v: &[T]) -> (Dtype, Vec<u8>) {
    (T::DTYPE, le_bytes(v))
}

pub fn to_bytes(m: &RecallMemory) -> Vec<u8> {
    let triples = m.links.triples();
    let link_a: Vec<u64> = triples.iter().map(|x| x.0).collect();
    let link_b: Vec<u64> = triples.iter().map(|x| x.1).collect();
    let link_weight: Vec<f32> = triples.iter().map(|x| x.2).collect();
    let log_ids: Vec<u64> = m.log.iter().map(|x| x.0).collect();
    let log_kinds: Vec<u8> = m.log.iter().map(|x| x.1).collect();
    let mut t: Vec<(&str, (Dtype, Vec<u8>))> = vec![
        ("network", (Dtype::U8, checkpoint::to_bytes(&m.net))),
        ("items.ids", le(&m.ids)),
        ("items.vectors", le(&m.vectors)),
        ("items.uses", le(&m.uses)),
        ("items.last_access", le(&m.last_access)),
        ("items.tier", le(&m.tier)),
        ("links.a", le(&link_a)),
        ("links.b", le(&link_b)),
        ("links.weight", le(&link_weight)),
        ("log.ids", le(&log_ids)),
        ("log.kinds", le(&log_kinds)),
        ("next_id", le(&[m.next_id])),
    ];
    let views: Vec<(&str, TensorView<'_>)> = t
        .iter_mut()
        .map(|(name, (dtype, data))| {
            let n = data.len() / dtype.bitsize().div_ceil(8);
            (
                *name,
                TensorView::new(*dtype, vec![n], data).expect("lengths match dtypes"),
            )
        })
        .collect();
    MEMORY.serialize(
        views,
        vec![(
            "config",
            serde_json::to_string(&m.cfg).expect("config is plain data"),
        )],
    )
}

fn bad<T>(msg: impl Into<String>) -> Result<T> {
    MEMORY.invalid(msg)
}

fn tensor<'a>(st: &SafeTensors<'a>, name: &str, dtype: Dtype) -> Result<TensorView<'a>> {
    let t = st
        .tensor(name)
        .or_else(|_| bad(format!("tensor {name} is missing")))?;
    if t.dtype() != dtype || t.shape().len() != 1 {
        return bad(format!(
            "tensor {name} is {:?} {:?}, expected 1-D {dtype:?}",
            t.dtype(),
            t.shape()
        ));
    }
    Ok(t)
}

fn read<T: LeScalar>(st: &SafeTensors<'_>, name: &str, len: Option<usize>) -> Result<Vec<T>> {
    let t = tensor(st, name, T::DTYPE)?;
    let n = t.shape()[0];
    if let Some(want) = len {
        if n != want {
            return bad(format!("tensor {name} has {n} elements, expected {want}"));
        }
    }
    Ok(t.data().chunks_exact(T::WIDTH).map(T::from_le).collect())
}

/// A memory from `to_bytes` output, or a `Value` error naming what is wrong.
pub fn from_bytes(data: &[u8]) -> Result<RecallMemory> {
    let st = SafeTensors::deserialize(data).map_err(|e| MEMORY.unreadable(e))?;
    let meta = MEMORY.metadata(data)?;
    let cfg: MemoryConfig = serde_json::from_str(
        meta.get("config")
            .map_or_else(|| bad("__metadata__ has no \"config\" entry"), Ok)?,
    )
    .or_else(|e| bad(format!("config: {e}")))?;
    cfg.validate().or_else(|e| bad(format!("config: {e}")))?;
    let mut m = RecallMemory::new(cfg)?;
    let dim = m.cfg.dim;

    let ids = read::<u64>(&st, "items.ids", None)?;
    let n = ids.len();
    let vectors = read::<f32>(&st, "items.vectors", Some(n * dim))?;
    let uses = read::<u32>(&st, "items.uses", Some(n))?;
    let last = read::<f64>(&st, "items.last_access", Some(n))?;
    let tier = read::<u8>(&st, "items.tier", Some(n))?;
    let mut index = HashMap::with_capacity(n);
    for (i, &id) in ids.iter().enumerate() {
        if id == u64::MAX || index.insert(id, i).is_some() {
            return bad(format!("item id {id} is reserved or repeated"));
        }
    }
    if let Some(k) = vectors.iter().position(|v| !v.is_finite()) {
        return bad(format!("item vector {} holds {}", k / dim, vectors[k]));
    }
    if let Some(r) = vectors
        .chunks_exact(dim)
        .position(|r| r.iter().all(|&v| v == 0.0))
    {
        return bad(format!("item vector {r} is all zeros"));
    }
    if let Some(i) = (0..n).find(|&i| Tier::from_u8(tier[i]).is_none() || !last[i].is_finite()) {
        return bad(format!(
            "item {} has tier {} and last access {}",
            ids[i], tier[i], last[i]
        ));
    }
    let la = read::<u64>(&st, "links.a", None)?;
    let lb = read::<u64>(&st, "links.b", Some(la.len()))?;
    let lw = read::<f32>(&st, "links.weight", Some(la.len()))?;
    for k in 0..la.len() {
        let ok = la[k] < lb[k]
            && index.contains_key(&la[k])
            && index.contains_key(&lb[k])
            && (0.0..=1.0).contains(&lw[k]);
        if !ok {
            return bad(format!(
                "link {} - {} ({}) is not valid",
                la[k], lb[k], lw[k]
            ));
        }
        m.links.set(la[k], lb[k], lw[k]);
    }
    let log_ids = read::<u64>(&st, "log.ids", None)?;
    let kinds = read::<u8>(&st, "log.kinds", Some(log_ids.len()))?;
    let mut rehearsed = HashSet::new();
    for (&id, &kind) in log_ids.iter().zip(&kinds) {
        let known = index.contains_key(&id);
        let kind_ok = kind == LOG_LEARN || (kind == LOG_REHEARSE && rehearsed.insert(id));
        if !(known && kind_ok) {
            return bad(format!("log entry ({id}, {kind}) is not valid"));
        }
    }
    // An item is rehearsed exactly when it is promoted to semantic, and tiers never go down:
    // a file where the two disagree would rehearse an item twice on its next promotion and
    // then save a file that no longer loads.
    if let Some(i) =
        (0..n).find(|&i| (tier[i] == Tier::Semantic as u8) != rehearsed.contains(&ids[i]))
    {
        return bad(format!(
            "item {} has tier {} but {} rehearsal in the log",
            ids[i],
            tier[i],
            if rehearsed.contains(&ids[i]) {
                "a"
            } else {
                "no"
            }
        ));
    }
    let next_id = read::<u64>(&st, "next_id", Some(1))?[0];
    if ids.iter().any(|&id| id >= next_id) {
        return bad(format!("next_id {next_id} is not above every stored id"));
    }
    let net_bytes = tensor(&st, "network", Dtype::U8)?;
    let net = checkpoint::from_bytes(net_bytes.data()).or_else(|e| bad(format!("network: {e}")))?;
    let cd = m.cfg.code_dim;
    if net.n_in() != cd || net.n_out() != cd {
        return bad(format!(
            "the network maps {} -> {}, expected code_dim {cd} -> {cd}",
            net.n_in(),
            net.n_out()
        ));
    }
    if st.names().len() != 12 {
        return bad(format!("expected 12 tensors, found {}", st.names().len()));
    }
    m.codes = m.project(&vectors, n);
    m.net = net;
    m.ids = ids;
    m.vectors = vectors;
    m.uses = uses;
    m.last_access = last;
    m.tier = tier;
    m.index = index;
    m.log = log_ids.into_iter().zip(kinds).collect();
    m.next_id = next_id;
    Ok(m)
}
