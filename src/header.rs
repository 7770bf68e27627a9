//! The safetensors header shared by lpn's files (network checkpoints, memory saves).
//!
//! Each file's `__metadata__` holds `format` (what the file is), `format_version`,
//! `lpn_version` (the writer's) and the file's own JSON entries. The header is written with
//! every object's keys sorted: safetensors writes `__metadata__` in hash-map order, which
//! differs from call to call, and the same state must give the same bytes (content hashes,
//! dedup, caching). Loading checks `format` and `format_version` before anything else is read.
use crate::error::{value_err, LpnError, Result};
use safetensors::tensor::{SafeTensors, View};
use std::collections::HashMap;

/// One kind of lpn file: its `format` tag and version, and what its errors call it ("not an
/// {noun}", "invalid {noun}: ...").
pub struct Format {
    pub tag: &'static str,
    pub version: u32,
    pub noun: &'static str,
}

impl Format {
    pub const fn new(tag: &'static str, version: u32, noun: &'static str) -> Self {
        Format { tag, version, noun }
    }

    /// The file: `tensors` under a canonical header whose `__metadata__` holds the format,
    /// its version, the writing lpn's version and `entries`.
    pub fn serialize<V: View>(
        &self,
        tensors: Vec<(&str, V)>,
        entries: Vec<(&str, String)>,
    ) -> Vec<u8> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), self.tag.to_string());
        meta.insert("format_version".to_string(), self.version.to_string());
        meta.insert(
            "lpn_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        );
        for (key, value) in entries {
            meta.insert(key.to_string(), value);
        }
        // Names are unique and shapes match their data by construction, so this cannot fail.
        let bytes = safetensors::serialize(tensors, Some(meta)).expect("tensors are well formed");
        canonical(bytes)
    }

    /// The `__metadata__` of `data`, once it names this format at this version; otherwise a
    /// `Value` error saying what the file is instead.
    pub fn metadata(&self, data: &[u8]) -> Result<HashMap<String, String>> {
        let (_, header) = SafeTensors::read_metadata(data).map_err(|e| self.unreadable(e))?;
        let noun = self.noun;
        let Some(meta) = header.metadata().clone() else {
            return value_err(format!(
                "not an {noun}: the safetensors file has no __metadata__"
            ));
        };
        match meta.get("format") {
            Some(f) if f == self.tag => {}
            Some(f) => {
                return value_err(format!(
                    "not an {noun}: format is {f:?}, expected {:?}",
                    self.tag
                ))
            }
            None => {
                return value_err(format!(
                    "not an {noun}: __metadata__ has no \"format\" entry"
                ))
            }
        }
        let version = meta
            .get("format_version")
            .map_or("<missing>", String::as_str);
        if version != self.version.to_string() {
            return value_err(format!(
                "{} format version {version} is not supported: this lpn ({}) reads version {}",
                self.noun,
                env!("CARGO_PKG_VERSION"),
                self.version
            ));
        }
        Ok(meta)
    }

    /// The error for bytes safetensors cannot read at all.
    pub fn unreadable(&self, e: impl std::fmt::Display) -> LpnError {
        LpnError::Value(format!(
            "not a readable {} (safetensors: {e}); is the file truncated or corrupted?",
            self.noun
        ))
    }

    /// A `Value` error: "invalid {noun}: {msg}".
    pub fn invalid<T>(&self, msg: impl Into<String>) -> Result<T> {
        value_err(format!("invalid {}: {}", self.noun, msg.into()))
    }
}

/// The same file with its JSON header written with every object's keys sorted. Offsets are
/// relative to the end of the header, so only the header changes; it is padded with spaces to
/// 8 bytes as safetensors does.
pub fn canonical(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8-byte length")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors wrote valid JSON");
    // serde_json's map is a BTreeMap (no `preserve_order`): keys serialise sorted.
    let mut text = serde_json::to_vec(&header).expect("JSON value serialises");
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

#[cfg(test)]
mod tests {
    use crate::memory::{save, MemoryConfig, RecallMemory};
    use crate::{checkpoint, LayerSpec, LearnConfig, Network};

    /// FNV-1a, 64-bit: a fingerprint that no toolchain update changes (std's hashers may).
    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Fingerprints `(header, data)` of an lpn file after checking its header is canonical
    /// (sorted keys, space-padded to 8 bytes). Blanked first, because other work legitimately
    /// moves them (a new config field, the next release): the metadata entries of `meta`, each
    /// checked to be exactly the given text, and the tensor `skip` (offsets and bytes), which
    /// the caller pins on its own.
    fn fingerprint(bytes: &[u8], meta: &[(&str, String)], skip: Option<&str>) -> (u64, u64) {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0, "header length {n} is not padded to 8 bytes");
        let text = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let json = text.trim_end_matches(' ');
        let mut header: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            serde_json::to_string(&header).unwrap(),
            json,
            "header is not canonical"
        );
        for (key, want) in meta {
            assert_eq!(
                header["__metadata__"][*key].as_str(),
                Some(want.as_str()),
                "{key}"
            );
            header["__metadata__"][*key] = "-".into();
        }
        let mut data = bytes[8 + n..].to_vec();
        if let Some(name) = skip {
            let range = header[name]["data_offsets"].clone();
            let (a, b) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
            data.drain(a as usize..b as usize);
            header[name]["data_offsets"] = "-".into();
        }
        (
            fnv(serde_json::to_string(&header).unwrap().as_bytes()),
            fnv(&data),
        )
    }

    fn network() -> Network {
        let cfg = LearnConfig {
            replay_capacity: 3,
            ..LearnConfig::default()
        };
        let mut hidden = LayerSpec::new(6, 5);
        hidden.activation = crate::activation::Activation::Tanh;
        Network::new(vec![hidden, LayerSpec::new(5, 2)], cfg, 3).unwrap()
    }

    // Pinned from the writers as they were before this module took over their header, so the
    // codec provably writes the same bytes. A change to the format itself re-pins them (and
    // says why in its commit).
    #[test]
    fn checkpoint_bytes_are_pinned() {
        let net = network();
        let specs: Vec<&LayerSpec> = net.layers().iter().map(|l| l.spec()).collect();
        let meta = [
            // as stored: without the cascade's fields in consolidation_mode "none"
            ("config", checkpoint::config_json(net.config())),
            ("specs", serde_json::to_string(&specs).unwrap()),
            ("lpn_version", env!("CARGO_PKG_VERSION").to_string()),
        ];
        let got = fingerprint(&checkpoint::to_bytes(&net), &meta, None);
        assert_eq!(
            got,
            (0x6cce_e75b_1483_a0a8, 0xa5fa_c2c6_94fb_a15a),
            "checkpoint bytes changed: {got:#x?}"
        );
    }

    #[test]
    fn memory_bytes_are_pinned() {
        let cfg = MemoryConfig {
            dim: 4,
            code_dim: 8,
            seed: 5,
            ..MemoryConfig::default()
        };
        let mut m = RecallMemory::new(cfg).unwrap();
        let x: Vec<f32> = (0..12).map(|i| ((i * 5) % 7) as f32 - 3.0).collect();
        m.observe(&x, 3, None, 1.0).unwrap();
        m.reinforce(&[0, 2], 2.0).unwrap();
        let bytes = save::to_bytes(&m);
        // The layer is stored as its own canonical checkpoint (pinned above).
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let net = st.tensor("network").unwrap();
        assert_eq!(net.data(), checkpoint::to_bytes(m.network()).as_slice());
        let meta = [
            ("config", serde_json::to_string(m.config()).unwrap()),
            ("lpn_version", env!("CARGO_PKG_VERSION").to_string()),
        ];
        let got = fingerprint(&bytes, &meta, Some("network"));
        assert_eq!(
            got,
            (0xd687_8377_dc80_dfc0, 0x036a_4a5b_fd01_3c14),
            "memory bytes changed: {got:#x?}"
        );
    }

    #[test]
    fn each_format_names_what_it_read_instead() {
        let ckpt = checkpoint::to_bytes(&network());
        let e = save::from_bytes(&ckpt).err().unwrap().to_string();
        assert_eq!(
            e,
            "not an lpn memory file: format is \"lpn-checkpoint\", expected \"lpn-memory\""
        );
        let none: Vec<(&str, safetensors::tensor::TensorView<'_>)> = Vec::new();
        let plain = safetensors::serialize(none.clone(), None).unwrap();
        let e = save::from_bytes(&plain).err().unwrap().to_string();
        assert_eq!(
            e,
            "not an lpn memory file: the safetensors file has no __metadata__"
        );
        let newer = super::Format::new("lpn-memory", 2, "-");
        let e = save::from_bytes(&newer.serialize(none, vec![]))
            .err()
            .unwrap()
            .to_string();
        let want = format!(
            "lpn memory file format version 2 is not supported: this lpn ({}) reads version 1",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(e, want);
        let e = checkpoint::from_bytes(b"nonsense")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("not a readable lpn checkpoint (safetensors: "),
            "{e}"
        );
    }
}
