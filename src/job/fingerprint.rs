//! What a committed partition was computed from: the input fingerprint, the parameter hash,
//! and the RNG seed of each clustering.
//!
//! `skip_existing` compares the first two with a partition's commit record, so both must
//! change whenever the outputs could, and only then.

use sha2::{Digest, Sha256};

use crate::io::hex;

use super::plan::JobPlan;
use crate::io::{Partition, PartitionKey};

/// A 64-bit hash of a document id after `prefix` (a seed, or nothing): FNV-1a over the bytes,
/// mixed by the splitmix64 finaliser. The sample of a fit and assign's duplicate-id check
/// both use it.
pub(super) fn id_hash(prefix: &[u8], id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in prefix.iter().chain(id.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Derives the RNG seed of one clustering from the job seed and its key.
pub fn derive_seed(seed: u64, key: &PartitionKey) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.to_string().as_bytes());
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("digest has 32 bytes"))
}

/// sha256 over a partition's files: path relative to the input root, size and mtime.
pub fn input_fingerprint(plan: &JobPlan, partition: &Partition) -> String {
    let mut h = Sha256::new();
    for f in &partition.files {
        let relative = f.path.strip_prefix(&plan.dataset.root).unwrap_or(&f.path);
        h.update(relative.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(f.size.to_le_bytes());
        h.update(f.mtime_ns.to_le_bytes());
    }
    hex(&h.finalize())
}

/// sha256 over the fingerprints of every partition, in plan order: the fingerprint of a
/// global clustering, which depends on all of them.
pub fn combined_fingerprint(fingerprints: &[String]) -> String {
    hex(&Sha256::digest(fingerprints.join("\n").as_bytes()))
}

/// sha256 over everything that shapes the outputs: input columns, vectorise, cluster and
/// keyword parameters, and the tool version.
pub fn param_hash(plan: &JobPlan) -> String {
    param_hash_of(&plan.spec)
}

/// [`param_hash`] of a spec.
pub fn param_hash_of(spec: &crate::output::JobSpec) -> String {
    let shaping = serde_json::json!({
        "tool": env!("CARGO_PKG_VERSION"),
        "text_column": spec.input.text_column,
        "id_column": spec.input.id_column,
        "vectorize": spec.vectorize,
        "cluster": spec.cluster,
        "keywords": spec.keywords,
    });
    hex(&Sha256::digest(shaping.to_string().as_bytes()))
}

/// The parameter hash of labels assigned with `model_id`: the input columns, the tool
/// version and the model (whose id covers every parameter of the fit).
pub fn assign_hash(plan: &JobPlan, model_id: &str) -> String {
    let shaping = serde_json::json!({
        "tool": env!("CARGO_PKG_VERSION"),
        "text_column": plan.spec.input.text_column,
        "id_column": plan.spec.input.id_column,
        "model_id": model_id,
    });
    hex(&Sha256::digest(shaping.to_string().as_bytes()))
}

/// The model id of a partition-scope clustering: a hash of its parameters, its key and what
/// the fit gave each document (not of where the input lives, so the same job on local disk
/// and on an object store writes the same bytes).
pub fn partition_model_id(
    param_hash: &str,
    key: &PartitionKey,
    fit: &crate::cluster::KMeansFit,
) -> String {
    let mut h = Sha256::new();
    h.update(param_hash);
    h.update(key.to_string());
    for (&label, &similarity) in fit.labels.iter().zip(&fit.similarity) {
        h.update(label.to_le_bytes());
        h.update(similarity.to_bits().to_le_bytes());
    }
    hex(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Dataset, InputFile};
    use crate::output::JobSpec;

    fn key(v: &str) -> PartitionKey {
        PartitionKey(vec![("dt".into(), v.into())])
    }

    fn plan(spec: &str) -> JobPlan {
        let spec = JobSpec::parse(std::path::Path::new("job.toml"), spec, &[] as &[&str]).unwrap();
        JobPlan {
            vectorize: spec.vectorize.check().unwrap(),
            cluster: spec.cluster.check().unwrap(),
            keywords: spec.keywords.check().unwrap(),
            dataset: Dataset {
                root: "in".into(),
                partition_keys: vec!["dt".into()],
                partitions: Vec::new(),
            },
            spec,
        }
    }

    #[test]
    fn seeds_are_stable_and_differ_by_key_and_seed() {
        // Changing this value changes every clustering's random draws, so every output.
        assert_eq!(
            derive_seed(0, &key("2018-06-01")),
            derive_seed(0, &key("2018-06-01"))
        );
        assert_ne!(
            derive_seed(0, &key("2018-06-01")),
            derive_seed(0, &key("2018-06-02"))
        );
        assert_ne!(
            derive_seed(0, &key("2018-06-01")),
            derive_seed(1, &key("2018-06-01"))
        );
    }

    #[test]
    fn input_fingerprint_follows_size_and_mtime_not_the_root() {
        let file = |root: &str, size, mtime_ns| InputFile {
            path: format!("{root}/dt=a/part-0.parquet").into(),
            size,
            mtime_ns,
            n_rows: 1,
        };
        let partition = |f: InputFile| Partition {
            key: key("a"),
            files: vec![f],
            problem: None,
        };
        let mut p = plan("[input]\npath = \"in\"\n[cluster]\nk = 2\n[output]\npath = \"out\"\n");
        p.dataset.root = "/a".into();
        let base = input_fingerprint(&p, &partition(file("/a", 10, 5)));
        assert_ne!(base, input_fingerprint(&p, &partition(file("/a", 11, 5))));
        assert_ne!(base, input_fingerprint(&p, &partition(file("/a", 10, 6))));
        p.dataset.root = "/b".into();
        assert_eq!(base, input_fingerprint(&p, &partition(file("/b", 10, 5))));
        let combined = combined_fingerprint(&[base.clone(), base.clone()]);
        assert_ne!(combined, combined_fingerprint(std::slice::from_ref(&base)));
    }

    #[test]
    fn param_hash_changes_with_what_shapes_outputs_only() {
        let spec = |k: u32, out: &str| {
            format!("[input]\npath = \"in\"\n[cluster]\nk = {k}\n[output]\npath = \"{out}\"\n")
        };
        let base = param_hash(&plan(&spec(2, "out")));
        assert_eq!(base, param_hash(&plan(&spec(2, "elsewhere"))));
        assert_ne!(base, param_hash(&plan(&spec(3, "out"))));
    }
}
