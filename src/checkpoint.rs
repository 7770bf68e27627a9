//! Checkpoints: the whole network as one safetensors file (little-endian, versioned).
//!
//! Layout. The JSON header's `__metadata__` holds `format = "lpn-checkpoint"`, `format_version`,
//! the writing `lpn_version`, and the config and layer specs as JSON strings. Every number lives
//! in a 1-D tensor:
//!
//! * `net.counters` u64 `[seed, steps, samples, replays, contrastive_steps]`
//! * `net.goodness` f64 `[G+, G-]`, `net.last_replayed` u32
//! * `rng.seed` u8 `[32]`, `rng.stream` u64 `[1]`, `rng.word_pos` u64 `[lo, hi]`
//! * `replay.x` f32, `replay.t` f32, `replay.mask` u8, `replay.seen` u64 `[1]`, and with
//!   `replay_policy = "balanced"` only, `replay.class_seen` u64 `[n_out]`
//! * with `readout_window > 0` only, `readout.last_positive` u64 `[n_out]`
//! * per layer `layers.{k}.`: the arena as stored (`row_start` u64, `row_len` u32, `pre` u32,
//!   `weight`, `short_trail`, `long_trail`, `consolidation`, `anchor` f32), `bias`,
//!   `error_trace`, `activity_trace` f32, `max_fan_in` u32, `budget` f64 `[fraction, loss_avg]`,
//!   `budget_flags` u8 `[has_loss_avg, expanding]`, `counters` u64 `[steps, touched_last,
//!   touched_total, pruned_last, grown_last, pruned_total, grown_total]`, `stats` f64
//!   `[touched_fraction_sum, last_loss]`, and `feedback` f32 for feedback-trained hidden layers.
//!
//! The arena is saved slot for slot (spare slots included) so a resumed network has the same
//! capacities and therefore re-lays out, grows and reports exactly as the original would.
//!
//! Loading trusts nothing: every length is checked against the specs before anything is
//! allocated from it, and every index before it is used, so a corrupt or hostile file can only
//! produce a `Value` error. Allocation never exceeds a small multiple of the file's size.
use crate::arena::{Flat, FlatVec, Kind, SynapseArena};
use crate::budget::Budget;
use crate::config::{LayerSpec, LearnConfig};
use crate::error::Result;
use crate::header::Format;
use crate::layer::{Layer, LayerStats, Side, Signal};
use crate::network::{Counters, Network, Saved};
use crate::replay::Reservoir;
use crate::topology::Geometry;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashSet;

pub const FORMAT: &str = "lpn-checkpoint";
pub const FORMAT_VERSION: u32 = 1;
const CHECKPOINT: Format = Format::new(FORMAT, FORMAT_VERSION, "lpn checkpoint");

/// An owned little-endian tensor for the writer.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

#[derive(Default)]
struct Writer {
    tensors: Vec<(String, Owned)>,
}

/// Element types stored in lpn files (checkpoints, memory saves), with their little-endian
/// encoding.
pub(crate) trait LeScalar: Copy {
    const DTYPE: Dtype;
    const WIDTH: usize;
    fn put_le(self, out: &mut Vec<u8>);
    fn from_le(chunk: &[u8]) -> Self;
}

macro_rules! le_scalar {
    ($t:ty, $dtype:expr) => {
        impl LeScalar for $t {
            const DTYPE: Dtype = $dtype;
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le(chunk: &[u8]) -> Self {
                <$t>::from_le_bytes(chunk.try_into().expect("chunk of WIDTH bytes"))
            }
        }
    };
}

le_scalar!(f32, Dtype::F32);
le_scalar!(f64, Dtype::F64);
le_scalar!(u32, Dtype::U32);
le_scalar!(u64, Dtype::U64);
le_scalar!(u8, Dtype::U8);

/// `v` as little-endian bytes.
pub(crate) fn le_bytes<T: LeScalar>(v: &[T]) -> Vec<u8> {
    let mut data = Vec::with_capacity(v.len() * T::WIDTH);
    for &x in v {
        x.put_le(&mut data);
    }
    data
}

impl Writer {
    fn put<T: LeScalar>(&mut self, name: String, v: &[T]) {
        let tensor = Owned {
            dtype: T::DTYPE,
            shape: vec![v.len()],
            data: le_bytes(v),
        };
        self.tensors.push((name, tensor));
    }
}

impl Writer {
    fn put_flat(&mut self, name: String, v: Flat<'_>) {
        match v {
            Flat::U32(v) => self.put(name, v),
            Flat::F32(v) => self.put(name, v),
        }
    }
}

/// The network as safetensors bytes.
pub fn to_bytes(net: &Network) -> Vec<u8> {
    let mut w = Writer::default();
    let c = net.counters();
    w.put(
        "net.counters".into(),
        &[
            net.seed(),
            c.steps,
            c.samples,
            c.replays,
            c.contrastive_steps,
        ],
    );
    let (gp, gn) = net.last_goodness();
    w.put("net.goodness".into(), &[gp, gn]);
    w.put("net.last_replayed".into(), net.last_replayed());
    let rng = net.rng();
    w.put("rng.seed".into(), &rng.get_seed());
    w.put("rng.stream".into(), &[rng.get_stream()]);
    let wp = rng.get_word_pos();
    w.put("rng.word_pos".into(), &[wp as u64, (wp >> 64) as u64]);
    let r = net.reservoir();
    w.put("replay.x".into(), &r.x);
    w.put("replay.t".into(), &r.t);
    w.put("replay.mask".into(), &r.mask);
    w.put("replay.seen".into(), &[r.seen]);
    // Written only where the config uses them, so default files keep their bytes.
    if r.balanced() {
        w.put("replay.class_seen".into(), &r.class_seen);
    }
    if !net.readout_last().is_empty() {
        w.put("readout.last_positive".into(), net.readout_last());
    }
    for (k, l) in net.layers().iter().enumerate() {
        let p = |s: &str| format!("layers.{k}.{s}");
        let a = l.arena();
        w.put(
            p("row_start"),
            &a.row_starts().iter().map(|&s| s as u64).collect::<Vec<_>>(),
        );
        w.put(p("row_len"), a.row_lens());
        for (name, col) in a.flat_columns() {
            // An absent optional column is not written at all (nor an empty one: a file without
            // cascade levels is then the same bytes as before the cascade existed).
            let optional = SynapseArena::COLUMNS
                .iter()
                .any(|c| c.name == name && c.optional);
            if !(optional && col_is_empty(&col)) {
                w.put_flat(p(name), col);
            }
        }
        for (name, v) in l.unit_vectors() {
            w.put_flat(p(name), v);
        }
        let (budget, flags) = l.budget().parts();
        w.put(p("budget"), &budget);
        w.put(p("budget_flags"), &flags);
        let (counters, stats) = l.stats().counters(l.steps());
        w.put(p("counters"), &counters);
        w.put(p("stats"), &stats);
        if let Some(f) = l.feedback() {
            w.put(p("feedback"), f);
        }
    }
    let specs: Vec<&LayerSpec> = net.layers().iter().map(|l| l.spec()).collect();
    let refs: Vec<(&str, &Owned)> = w.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    CHECKPOINT.serialize(
        refs,
        vec![
            ("config", config_json(net.config())),
            (
                "specs",
                serde_json::to_string(&specs).expect("specs are plain data"),
            ),
        ],
    )
}

/// The config as stored. With `consolidation_mode = "none"` the cascade's fields are left out
/// (loading fills them with their defaults), and so is every later field at its default
/// (`LATER_KEYS`), so such a file has the same bytes as one written before those fields
/// existed, and older lpn versions can still read it.
pub(crate) fn config_json(cfg: &LearnConfig) -> String {
    let mut text = serde_json::to_string(cfg).expect("config is plain data");
    if !cfg.cascade() {
        for key in CASCADE_KEYS {
            cut_key(&mut text, key, None);
        }
    }
    let default = serde_json::to_string(&LearnConfig::default()).expect("config is plain data");
    for key in LATER_KEYS {
        cut_key(&mut text, key, Some(&default));
    }
    text
}

/// Cut `,"key":value` out of the config text, or only where the value is the same text as in
/// `default`. Done on the text itself: re-serialising parsed JSON would print some f32 numbers
/// differently (1e-6 for 0.000001). These values are numbers and bare words, so a value ends
/// at the next `,` or `}`.
fn cut_key(text: &mut String, key: &str, default: Option<&str>) {
    let pat = format!(",\"{key}\":");
    let value_of = |t: &str| -> Option<(usize, usize)> {
        let start = t.find(&pat)?;
        let rest = &t[start + pat.len()..];
        Some((
            start,
            pat.len() + rest.find([',', '}']).unwrap_or(rest.len()),
        ))
    };
    if let Some((start, len)) = value_of(text) {
        let same = default.is_none_or(|d| {
            value_of(d).is_some_and(|(ds, dl)| d[ds..ds + dl] == text[start..start + len])
        });
        if same {
            text.replace_range(start..start + len, "");
        }
    }
}

/// Config fields added after the first checkpoint format, left out of a file at their default.
const LATER_KEYS: [&str; 6] = [
    "route_consolidation",
    "route_long",
    "trail_scaled_step",
    "output_error",
    "readout_window",
    "replay_policy",
];

/// The config fields that only the cascade reads (left out of a file in mode "none").
const CASCADE_KEYS: [&str; 7] = [
    "consolidation_mode",
    "cascade_levels",
    "cascade_tau",
    "cascade_ratio",
    "cascade_max",
    "cascade_half",
    "cascade_anchor_level",
];

fn col_is_empty(c: &Flat<'_>) -> bool {
    match c {
        Flat::U32(v) => v.is_empty(),
        Flat::F32(v) => v.is_empty(),
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T> {
    CHECKPOINT.invalid(msg)
}

/// Typed, length-checked access to the tensors of one file; remembers what was read so that
/// anything left over (a foreign or edited file) is reported.
struct Reader<'a> {
    st: SafeTensors<'a>,
    used: HashSet<String>,
}

impl<'a> Reader<'a> {
    fn raw(
        &mut self,
        name: &str,
        dtype: Dtype,
        width: usize,
        len: Option<usize>,
    ) -> Result<Option<&'a [u8]>> {
        let t = match self.st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        self.used.insert(name.to_string());
        if t.dtype() != dtype {
            return bad(format!(
                "tensor {name} has dtype {:?}, expected {dtype:?}",
                t.dtype()
            ));
        }
        if t.shape().len() != 1 {
            return bad(format!(
                "tensor {name} has shape {:?}, expected one dimension",
                t.shape()
            ));
        }
        let n = t.shape()[0];
        if let Some(want) = len {
            if n != want {
                return bad(format!("tensor {name} has {n} elements, expected {want}"));
            }
        }
        let data = t.data();
        if data.len() != n * width {
            return bad(format!(
                "tensor {name} has {} bytes for {n} elements",
                data.len()
            ));
        }
        Ok(Some(data))
    }

    fn get<T: LeScalar>(&mut self, name: &str, len: Option<usize>) -> Result<Vec<T>> {
        match self.opt(name, len)? {
            Some(v) => Ok(v),
            None => bad(format!("tensor {name} is missing")),
        }
    }

    fn opt<T: LeScalar>(&mut self, name: &str, len: Option<usize>) -> Result<Option<Vec<T>>> {
        Ok(self
            .raw(name, T::DTYPE, T::WIDTH, len)?
            .map(|d| d.chunks_exact(T::WIDTH).map(T::from_le).collect()))
    }

    /// Length of a tensor without reading it (for sizes declared by the file itself).
    fn len_of(&self, name: &str) -> Result<usize> {
        match self.st.tensor(name) {
            Ok(t) if t.shape().len() == 1 => Ok(t.shape()[0]),
            Ok(t) => bad(format!(
                "tensor {name} has shape {:?}, expected one dimension",
                t.shape()
            )),
            Err(_) => bad(format!("tensor {name} is missing")),
        }
    }
}

fn finite(what: &str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(k) => bad(format!("{what}[{k}] is {}, expected a finite number", v[k])),
        None => Ok(()),
    }
}

/// A network from checkpoint bytes, or a `Value` error naming what is wrong with them.
pub fn from_bytes(data: &[u8]) -> Result<Network> {
    let meta = CHECKPOINT.metadata(data)?;
    let json = |key: &str| -> Result<&String> {
        meta.get(key)
            .map_or_else(|| bad(format!("__metadata__ has no {key:?} entry")), Ok)
    };
    let config: LearnConfig =
        serde_json::from_str(json("config")?).or_else(|e| bad(format!("config: {e}")))?;
    let specs: Vec<LayerSpec> =
        serde_json::from_str(json("specs")?).or_else(|e| bad(format!("specs: {e}")))?;
    config.validate().or_else(|e| bad(format!("config: {e}")))?;
    if specs.is_empty() {
        return bad("no layers");
    }
    for (k, s) in specs.iter().enumerate() {
        s.validate().or_else(|e| bad(format!("layer {k}: {e}")))?;
        if k > 0 && s.n_in != specs[k - 1].n_out {
            return bad(format!(
                "layer {k} has n_in = {}, but layer {} has n_out = {}",
                s.n_in,
                k - 1,
                specs[k - 1].n_out
            ));
        }
    }
    // The same memory bound as construction: a file cannot make a later restructure allocate
    // what a network built from its specs could not.
    crate::limits::check_fits(&specs, &config).or_else(|e| bad(e.to_string()))?;
    let n_hidden = specs.len() - 1;
    let n_final = specs[n_hidden].n_out;
    let (n_in, n_out) = (specs[0].n_in, n_final);

    let st = SafeTensors::deserialize(data).map_err(|e| CHECKPOINT.unreadable(e))?;
    let mut rd = Reader {
        st,
        used: HashSet::new(),
    };
    let mut layers = Vec::with_capacity(specs.len());
    for (k, spec) in specs.iter().enumerate() {
        let signal = if k == n_hidden {
            Signal::Output
        } else {
            config
                .signal_of(k, n_hidden)
                .or_else(|e| bad(e.to_string()))?
                .into()
        };
        let layer = read_layer(&mut rd, k, spec, signal, n_final)?;
        crate::cascade::check_columns(layer.arena(), &config)
            .or_else(|e| bad(format!("layer {k}: {e}")))?;
        layers.push(layer);
    }

    let counters = rd.get::<u64>("net.counters", Some(5))?;
    let goodness = rd.get::<f64>("net.goodness", Some(2))?;
    let seed_bytes = rd.get::<u8>("rng.seed", Some(32))?;
    let stream = rd.get::<u64>("rng.stream", Some(1))?[0];
    let wp = rd.get::<u64>("rng.word_pos", Some(2))?;
    let word_pos = (wp[0] as u128) | ((wp[1] as u128) << 64);
    if word_pos >> 68 != 0 {
        return bad(format!(
            "rng word position {word_pos} is beyond the 68-bit ChaCha counter"
        ));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&seed_bytes);
    let mut rng = ChaCha8Rng::from_seed(seed);
    rng.set_stream(stream);
    rng.set_word_pos(word_pos);

    let reservoir = read_reservoir(&mut rd, &config, n_in, n_out)?;
    let last_replayed = rd.get::<u32>("net.last_replayed", None)?;
    let readout_last = if config.readout_window > 0 {
        rd.get::<u64>("readout.last_positive", Some(n_out))?
    } else {
        Vec::new()
    };
    if let Some(&s) = last_replayed
        .iter()
        .find(|&&s| s as usize >= reservoir.len())
    {
        return bad(format!(
            "net.last_replayed holds slot {s}, but the replay buffer has {} samples",
            reservoir.len()
        ));
    }
    let extra: Vec<String> = rd
        .st
        .names()
        .into_iter()
        .filter(|n| !rd.used.contains(*n))
        .map(String::from)
        .collect();
    if !extra.is_empty() {
        return bad(format!("unexpected tensor(s): {}", extra.join(", ")));
    }
    let saved = Saved {
        config,
        seed: counters[0],
        rng,
        counters: Counters {
            steps: counters[1],
            samples: counters[2],
            replays: counters[3],
            contrastive_steps: counters[4],
        },
        last_goodness: (goodness[0], goodness[1]),
        reservoir,
        last_replayed,
        readout_last,
    };
    Network::restore(layers, saved).or_else(|e| bad(e.to_string()))
}

/// One column or per-unit vector of `len` flat values of the given kind.
fn read_flat(rd: &mut Reader<'_>, name: &str, kind: Kind, len: usize) -> Result<Option<FlatVec>> {
    Ok(match kind {
        Kind::U32 => rd.opt::<u32>(name, Some(len))?.map(FlatVec::U32),
        Kind::F32 => rd.opt::<f32>(name, Some(len))?.map(FlatVec::F32),
    })
}

fn read_layer(
    rd: &mut Reader<'_>,
    k: usize,
    spec: &LayerSpec,
    signal: Signal,
    n_final: usize,
) -> Result<Layer> {
    let p = |s: &str| format!("layers.{k}.{s}");
    let (n_in, n_out) = (spec.n_in, spec.n_out);
    // Sizes the specs imply are checked against the file before anything of that size exists.
    let row_start = rd.get::<u64>(&p("row_start"), Some(n_out + 1))?;
    let row_len = rd.get::<u32>(&p("row_len"), Some(n_out))?;
    let slots = rd.len_of(&p("pre"))?;
    let pre = rd.get::<u32>(&p("pre"), Some(slots))?;
    let mut starts = Vec::with_capacity(row_start.len());
    for &s in &row_start {
        match usize::try_from(s) {
            Ok(v) if v <= slots => starts.push(v),
            _ => {
                return bad(format!(
                    "{} holds {s}, beyond the {slots} synapse slots",
                    p("row_start")
                ))
            }
        }
    }
    // Synapse values are not required to be finite: extreme (finite) inputs can overflow a
    // layer and make the engine itself store inf/NaN, and a checkpoint of any reachable state
    // must load. Nothing indexes or sizes by them, so they cannot make loading unsafe.
    let mut failure = None;
    let arena = SynapseArena::from_raw(starts, row_len, pre, n_in, |info| {
        let len = slots
            .checked_mul(info.width)
            .ok_or("column size overflows")?;
        read_flat(rd, &p(info.name), info.kind, len).map_err(|e| {
            let m = e.to_string();
            failure = Some(e);
            m
        })
    });
    let arena = match (arena, failure) {
        (Ok(a), _) => a,
        (Err(_), Some(e)) => return Err(e),
        (Err(e), None) => return bad(format!("layer {k} synapses: {e}")),
    };

    // Per-unit vectors are read into a layer assembled with placeholders, then replaced.
    let geo = Geometry::new(spec).or_else(|e| bad(e.to_string()))?;
    let budget_v = rd.get::<f64>(&p("budget"), Some(2))?;
    let flags = rd.get::<u8>(&p("budget_flags"), Some(2))?;
    let budget = Budget::from_parts([budget_v[0], budget_v[1]], [flags[0], flags[1]])
        .or_else(|e| bad(format!("layer {k} {e}")))?;
    let mut layer = Layer::assemble(spec.clone(), geo, signal, arena, vec![0; n_out], budget);
    for &(name, kind, side) in Layer::UNIT_VECTORS {
        let len = match side {
            Side::In => n_in,
            Side::Out => n_out,
        };
        let v = read_flat(rd, &p(name), kind, len)?
            .map_or_else(|| bad(format!("tensor {} is missing", p(name))), Ok)?;
        layer
            .set_unit_vector(name, v)
            .or_else(|e| bad(format!("layer {k}: {e}")))?;
    }
    // Growth re-lays rows out to max_fan_in slots. Construction sets it to the spec's value, or
    // to twice the row's initial fan-in (within the radius), so anything larger could only be an
    // attempt to make a later restructure allocate beyond what `limits` checked.
    let fan = crate::limits::reach_bound(spec, spec.radius)
        .min(spec.fan_in.map_or(u128::MAX, |f| f as u128));
    let cap = spec
        .max_fan_in
        .map_or(2 * fan, |m| m as u128)
        .min(u32::MAX as u128) as usize;
    if let Some(j) = layer.max_fan_in.iter().position(|&m| m as usize > cap) {
        return bad(format!(
            "{}[{j}] = {} exceeds the bound {cap}",
            p("max_fan_in"),
            layer.max_fan_in[j]
        ));
    }
    let counters = rd.get::<u64>(&p("counters"), Some(7))?;
    let fstats = rd.get::<f64>(&p("stats"), Some(2))?;
    let (steps, stats) = LayerStats::from_counters(
        &counters.try_into().expect("7 counters"),
        &fstats.try_into().expect("2 stats"),
    );
    layer.steps = steps;
    layer.stats = stats;
    let fb_len = n_out
        .checked_mul(n_final)
        .map_or_else(|| bad("feedback size overflows"), Ok)?;
    let feedback = rd.opt::<f32>(&p("feedback"), Some(fb_len))?;
    match (&feedback, signal) {
        (Some(f), Signal::Feedback) => finite(&p("feedback"), f)?,
        (None, Signal::Feedback) => {
            return bad(format!(
                "layer {k} learns by feedback but has no feedback matrix"
            ))
        }
        (Some(_), _) => {
            return bad(format!(
                "layer {k} has a feedback matrix but its signal is {}",
                signal.name()
            ))
        }
        (None, _) => {}
    }
    layer.feedback = feedback;
    Ok(layer)
}

fn read_reservoir(
    rd: &mut Reader<'_>,
    cfg: &LearnConfig,
    n_in: usize,
    n_out: usize,
) -> Result<Reservoir> {
    let seen = rd.get::<u64>("replay.seen", Some(1))?[0];
    // No run reaches 2^63 samples; near u64::MAX the counter would wrap on the next offer and
    // the buffer would then contradict it.
    if seen > u64::MAX / 2 {
        return bad(format!("replay.seen = {seen} is implausibly large"));
    }
    let nx = rd.len_of("replay.x")?;
    if nx % n_in != 0 {
        return bad(format!(
            "replay.x has {nx} values, not a multiple of n_in = {n_in}"
        ));
    }
    let len = nx / n_in;
    let expect = (cfg.replay_capacity as u64).min(seen);
    if len as u64 != expect {
        return bad(format!(
            "replay buffer holds {len} samples, expected min(replay_capacity = {}, seen = {seen}) = {expect}",
            cfg.replay_capacity
        ));
    }
    let per_out = len
        .checked_mul(n_out)
        .map_or_else(|| bad("replay buffer size overflows"), Ok)?;
    let x = rd.get::<f32>("replay.x", Some(nx))?;
    let t = rd.get::<f32>("replay.t", Some(per_out))?;
    let mask = rd.get::<u8>("replay.mask", Some(per_out))?;
    finite("replay.x", &x)?;
    finite("replay.t", &t)?;
    if let Some(k) = mask.iter().position(|&b| b > 1) {
        return bad(format!("replay.mask[{k}] is {}, expected 0 or 1", mask[k]));
    }
    let class_seen = if cfg.balanced() {
        rd.get::<u64>("replay.class_seen", Some(n_out))?
    } else {
        Vec::new()
    };
    // `stored` and `slot_class` are rebuilt from `t` by `Network::restore`.
    Ok(Reservoir {
        capacity: cfg.replay_capacity,
        n_in,
        n_out,
        seen,
        x,
        t,
        mask,
        class_seen,
        stored: Vec::new(),
        slot_class: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LpnError;

    #[test]
    fn later_fields_are_stored_only_away_from_their_default() {
        let plain = config_json(&LearnConfig::default());
        assert!(!plain.contains("route_"), "{plain}");
        let cfg = LearnConfig {
            route_long: 0.5,
            ..LearnConfig::default()
        };
        let text = config_json(&cfg);
        assert!(text.contains("\"route_long\":0.5") && !text.contains("route_consolidation"));
        let back: LearnConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn config_without_cascade_is_stored_as_before() {
        let cfg = LearnConfig {
            cascade_tau: 7.5,
            eps: 1e-6,
            ..LearnConfig::default()
        };
        let text = config_json(&cfg);
        assert!(!text.contains("cascade") && !text.contains("consolidation_mode"));
        assert!(
            text.contains("\"eps\":0.000001,") && !text.contains(",}"),
            "{text}"
        );
        let back: LearnConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, LearnConfig::default());
        let on = LearnConfig {
            consolidation_mode: crate::config::ConsolidationMode::Cascade,
            ..cfg
        };
        let back: LearnConfig = serde_json::from_str(&config_json(&on)).unwrap();
        assert_eq!(back, on);
    }

    fn net() -> Network {
        let cfg = LearnConfig {
            restructure_every: 7,
            replay_capacity: 5,
            auto_consolidate_every: 3,
            ..LearnConfig::default()
        };
        let mut a = LayerSpec::new(6, 8);
        a.activation = crate::activation::Activation::Tanh;
        Network::new(vec![a, LayerSpec::new(8, 3)], cfg, 11).unwrap()
    }

    fn train(n: &mut Network, steps: usize, offset: usize) {
        for s in 0..steps {
            let x: Vec<f32> = (0..6)
                .map(|i| (((s + offset) * 7 + i * 3) % 11) as f32 / 11.0 - 0.4)
                .collect();
            let t: Vec<f32> = (0..3)
                .map(|j| {
                    if (s + offset + j).is_multiple_of(3) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            n.learn(&x, &t, 1, None, 2).unwrap();
        }
    }

    #[test]
    fn round_trip_is_exact_and_resumes_exactly() {
        let mut a = net();
        train(&mut a, 40, 0);
        let mut b = from_bytes(&to_bytes(&a)).unwrap();
        assert!(a.same_state(&b));
        assert_eq!(to_bytes(&a).len(), to_bytes(&b).len());
        train(&mut a, 30, 40);
        train(&mut b, 30, 40);
        assert!(a.same_state(&b));
    }

    #[test]
    fn same_state_gives_same_bytes() {
        let mut a = net();
        train(&mut a, 20, 0);
        let first = to_bytes(&a);
        // Each to_bytes builds a fresh HashMap (fresh random hash order) for the metadata.
        for _ in 0..30 {
            assert_eq!(to_bytes(&a), first);
        }
        let b = from_bytes(&first).unwrap();
        assert_eq!(to_bytes(&b), first);
    }

    #[test]
    fn fresh_network_round_trips() {
        let a = net();
        assert!(a.same_state(&from_bytes(&to_bytes(&a)).unwrap()));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = to_bytes(&net());
        for cut in (0..bytes.len()).step_by(7) {
            assert!(matches!(from_bytes(&bytes[..cut]), Err(LpnError::Value(_))));
        }
    }

    #[test]
    fn readout_and_balanced_buffer_state_round_trip_and_are_checked() {
        use crate::config::{OutputError, ReplayPolicy};
        let cfg = LearnConfig {
            output_error: OutputError::Softmax,
            readout_window: 5,
            replay_capacity: 4,
            replay_policy: ReplayPolicy::Balanced,
            ..LearnConfig::default()
        };
        let mut a = Network::new(vec![LayerSpec::new(6, 3)], cfg, 2).unwrap();
        train(&mut a, 30, 0);
        let mut b = from_bytes(&to_bytes(&a)).unwrap();
        assert!(a.same_state(&b));
        train(&mut a, 10, 30);
        train(&mut b, 10, 30);
        assert!(a.same_state(&b) && to_bytes(&a) == to_bytes(&b));

        let mut c = a.clone();
        c.readout_and_buffer_mut().0.last_positive[1] = 41;
        assert!(!c.same_state(&a));
        let e = from_bytes(&to_bytes(&c)).unwrap_err();
        assert!(e.to_string().contains("names new sample 41"), "{e}");
        let mut d = a.clone();
        d.readout_and_buffer_mut().1.class_seen[0] += 1;
        let e = from_bytes(&to_bytes(&d)).unwrap_err();
        assert!(e.to_string().contains("do not add up"), "{e}");
    }

    #[test]
    fn out_of_range_pre_index_is_rejected() {
        let mut a = net();
        a.layer_mut(0).arena.columns_mut().pre[0] = 1000;
        let e = from_bytes(&to_bytes(&a)).unwrap_err();
        assert!(e.to_string().contains("input index"), "{e}");
    }
}
