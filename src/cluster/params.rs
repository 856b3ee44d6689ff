//! Clustering parameters: the `[cluster]` section as written, and its checked form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What one clustering covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each partition gets its own vocabulary and clustering; partitions run in parallel.
    Partition,
    /// One vocabulary and one clustering over all selected partitions.
    Global,
}

/// How the first centroids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitMethod {
    /// k distinct documents drawn uniformly.
    #[serde(rename = "random")]
    Random,
    /// k-means++ with cosine distance (D² weighting on `1 - cos`).
    #[serde(rename = "kmeans++")]
    KMeansPlusPlus,
    /// The talk's fast initialisation: draw `alpha·k` candidates, pick one, drop candidates
    /// with cosine at least `max_similar` to it, repeat.
    #[serde(rename = "similar_cut")]
    SimilarCut,
}

/// The `[cluster]` section as written by the user. The field comments are the job-spec
/// reference (`docs/job-spec.md` is generated from them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterParams {
    /// `partition`: each partition gets its own vocabulary and clustering, and partitions run
    /// in parallel. `global`: one vocabulary and one clustering over all selected partitions;
    /// labels are still written per partition.
    #[serde(default = "defaults::scope")]
    pub scope: Scope,
    /// Number of clusters. If a partition has fewer documents with terms than `k`, k is capped
    /// to that number, a warning is logged, and the manifest records `k_requested` and
    /// `n_clusters`. `"auto"`: fit `k_max` clusters (pieces), merge them by average linkage
    /// while two groups are clearly closer than a typical pair of pieces, then refine. Two
    /// pieces' closeness is their centroid cosine divided by the geometric mean of each one's
    /// mean cosine to all the other pieces, and groups join while their average closeness is
    /// at least the mean over all pairs plus half its standard deviation (with
    /// `merge_threshold` set: while their average cosine is at least that). The manifest's
    /// `merge` entry gives the k found, the merge map and the merge tree.
    pub k: K,
    /// With `k = "auto"`: the clusters fitted before merging. Unset: one per 50 documents with
    /// terms or per 5,000 stored document-term entries, whichever gives fewer, at least 10 and
    /// at most 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_max: Option<usize>,
    /// Maximum update-and-assign rounds: a guard, since with the default `tol` no fit on the
    /// shared corpora took more than 35 (20 Newsgroups 17-35, AG News 14-31, the others 5-19).
    /// The manifest's `converged` says whether `tol` or `max_iter` stopped a fit.
    #[serde(default = "defaults::max_iter")]
    pub max_iter: usize,
    /// Stop once at most this fraction of documents changed cluster in a round. Chosen on every
    /// shared corpus (seeds 0-4): 0.001 gives 20 Newsgroups 0.6661 mean NMI against 0.6668 for
    /// running until nothing moves, 0.002 gives 0.6607, and the other corpora are within 0.0005
    /// of running until nothing moves.
    #[serde(default = "defaults::tol")]
    pub tol: f64,
    /// The job's one seed, any `u64` (past `9223372036854775807` write it as a string of
    /// digits). Each clustering draws from an RNG seeded by (seed, partition key).
    #[serde(default, with = "seed_serde")]
    pub seed: u64,
    /// `similar_cut` (the 2018 talk's fast initialisation for sparse data, see the guide), `kmeans++`
    /// (cosine distance) or `random`.
    #[serde(default = "defaults::init")]
    pub init: InitMethod,
    /// `similar_cut`: candidate pool of `alpha · k` documents.
    #[serde(default = "defaults::alpha")]
    pub alpha: f64,
    /// `similar_cut`: candidates with cosine at least this to a chosen seed are dropped.
    #[serde(default = "defaults::max_similar")]
    pub max_similar: f64,
    /// Centroid pruning: after each update, zero entries with squared weight below `factor /
    /// cluster_size` (clusters larger than 1) and renormalise. `0` switches it off. The
    /// manifest records `mean_centroid_nnz`.
    #[serde(default = "defaults::centroid_min_df_factor")]
    pub centroid_min_df_factor: f64,
    /// Random starts, screened in two stages by the sum of document-to-centroid cosines: every
    /// start runs 3 rounds, the best 3 run on to round 5, and the best of those runs to
    /// convergence or `max_iter` (see `docs/experiments.md`).
    #[serde(default = "defaults::n_init")]
    pub n_init: usize,
    /// Over-cluster, then merge: visit clusters from largest to smallest and join each to the
    /// existing group whose centroids have the largest average cosine with it, if that is at
    /// least the threshold; merged centroids are size-weighted means; groups are renumbered by
    /// size and the old → new mapping goes in the manifest (`merge`). See the guide for when to
    /// use it.
    #[serde(default)]
    pub merge_threshold: Option<f64>,
    /// After a merge, continue k-means from the merged clusters for up to `max_iter` rounds, so
    /// documents move to the merged centroid that fits them best; clusters are then renumbered
    /// by size again (the manifest's `merge.mapping` gives each old cluster's final id,
    /// `merge.refine_rounds` the rounds run). `false` keeps the talk's merge as is: labels only
    /// follow the mapping.
    #[serde(default = "defaults::merge_refine")]
    pub merge_refine: bool,
}

/// `cluster.k`: a number of clusters, or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K {
    /// This many clusters.
    Count(usize),
    /// Found by over-clustering and merging.
    Auto,
}

impl Serialize for K {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            K::Count(k) => s.serialize_u64(*k as u64),
            K::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for K {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = K;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of clusters (an integer) or \"auto\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<K, E> {
                Ok(K::Count(v as usize))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<K, E> {
                u64::try_from(v)
                    .map(|v| K::Count(v as usize))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<K, E> {
                match v {
                    "auto" => Ok(K::Auto),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A `u64` seed as a TOML/JSON integer, or as a string of digits when TOML cannot hold it.
mod seed_serde {
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*seed) {
            Ok(small) => s.serialize_i64(small),
            Err(_) => s.collect_str(seed),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct Seed;
        impl serde::de::Visitor<'_> for Seed {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "a whole number from 0 to {} (or a string of its digits)",
                    u64::MAX
                )
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<u64, E> {
                v.trim()
                    .parse()
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(Seed)
    }
}

mod defaults {
    use super::{InitMethod, Scope};
    pub fn scope() -> Scope {
        Scope::Partition
    }
    pub fn max_iter() -> usize {
        50
    }
    pub fn tol() -> f64 {
        1e-3
    }
    pub fn init() -> InitMethod {
        InitMethod::SimilarCut
    }
    pub fn alpha() -> f64 {
        3.0
    }
    pub fn max_similar() -> f64 {
        0.5
    }
    pub fn centroid_min_df_factor() -> f64 {
        0.01
    }
    pub fn merge_refine() -> bool {
        true
    }
    pub fn n_init() -> usize {
        10
    }
}

/// A rule of [`ClusterParams`] that a value breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterParamError {
    #[error("`cluster.k` must be at least 1, got {0}")]
    K(usize),
    #[error("`cluster.k_max` must be at least 2, got {0}")]
    KMax(usize),
    #[error(
        "`cluster.k_max` is set and `cluster.k` is not \"auto\"\nhint: set `cluster.k = \"auto\"`, or remove `k_max`"
    )]
    KMaxWithoutAuto,
    #[error("`cluster.max_iter` must be at least 1, got {0}")]
    MaxIter(usize),
    #[error("`cluster.tol` must be in [0, 1], got {0}")]
    Tol(f64),
    #[error("`cluster.alpha` must be at least 1, got {0}")]
    Alpha(f64),
    #[error("`cluster.max_similar` must be in (0, 1], got {0}")]
    MaxSimilar(f64),
    #[error("`cluster.centroid_min_df_factor` must be finite and at least 0, got {0}")]
    PruneFactor(f64),
    #[error("`cluster.n_init` must be at least 1, got {0}")]
    NInit(usize),
    #[error("`cluster.merge_threshold` must be in (0, 1], got {0}")]
    MergeThreshold(f64),
}

/// With `k = "auto"` and no `k_max`: one cluster to fit per this many documents...
pub const AUTO_DOCS_PER_CLUSTER: usize = 50;
/// ... and per this many stored document-term entries (nnz), whichever gives fewer: a piece
/// of short documents needs more of them for a centroid that two samples would agree on ...
pub const AUTO_NNZ_PER_CLUSTER: usize = 5_000;
/// ... at least this many ...
pub const AUTO_K_MAX_MIN: usize = 10;
/// ... and at most this many.
pub const AUTO_K_MAX_MAX: usize = 200;

/// Checked clustering parameters; build with [`ClusterParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidClusterParams {
    scope: Scope,
    k: K,
    k_max: Option<usize>,
    max_iter: usize,
    tol: f64,
    seed: u64,
    init: InitMethod,
    alpha: f64,
    max_similar: f32,
    centroid_min_df_factor: f32,
    n_init: usize,
    merge_threshold: Option<f32>,
    merge_refine: bool,
    /// Kept member sums and assignment bounds (on unless a test switches them off: they
    /// change no result, only how much work a round does).
    accelerate: bool,
}

impl ValidClusterParams {
    pub fn accelerate(&self) -> bool {
        self.accelerate
    }
    /// The same parameters with kept sums and bounds switched off: every round sums every
    /// centroid from its members and scores every document.
    #[cfg(test)]
    pub(crate) fn without_acceleration(mut self) -> Self {
        self.accelerate = false;
        self
    }
    pub fn n_init(&self) -> usize {
        self.n_init
    }
    pub fn merge_threshold(&self) -> Option<f32> {
        self.merge_threshold
    }
    pub fn merge_refine(&self) -> bool {
        self.merge_refine
    }
    pub fn scope(&self) -> Scope {
        self.scope
    }
    /// The k given, `None` for `"auto"`.
    pub fn k(&self) -> Option<usize> {
        match self.k {
            K::Count(k) => Some(k),
            K::Auto => None,
        }
    }
    /// Whether k is found by over-clustering and merging.
    pub fn is_auto(&self) -> bool {
        self.k == K::Auto
    }
    /// The clusters to fit over `n_docs` documents with terms holding `nnz` stored entries: k,
    /// or with `"auto"` `k_max` (unset: the smaller of `n_docs / 50` and `nnz / 5000`, at
    /// least 10 and at most 200).
    pub fn k_to_fit(&self, n_docs: usize, nnz: usize) -> usize {
        match self.k {
            K::Count(k) => k,
            K::Auto => self.k_max.unwrap_or(
                (n_docs / AUTO_DOCS_PER_CLUSTER)
                    .min(nnz / AUTO_NNZ_PER_CLUSTER)
                    .clamp(AUTO_K_MAX_MIN, AUTO_K_MAX_MAX),
            ),
        }
    }
    pub fn max_iter(&self) -> usize {
        self.max_iter
    }
    pub fn tol(&self) -> f64 {
        self.tol
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn init(&self) -> InitMethod {
        self.init
    }
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
    pub fn max_similar(&self) -> f32 {
        self.max_similar
    }
    pub fn centroid_min_df_factor(&self) -> f32 {
        self.centroid_min_df_factor
    }
}

impl ClusterParams {
    /// Parameters with every default and the given `k`.
    pub fn with_k(k: usize) -> Self {
        Self {
            scope: defaults::scope(),
            k: K::Count(k),
            k_max: None,
            max_iter: defaults::max_iter(),
            tol: defaults::tol(),
            seed: 0,
            init: defaults::init(),
            alpha: defaults::alpha(),
            max_similar: defaults::max_similar(),
            centroid_min_df_factor: defaults::centroid_min_df_factor(),
            n_init: defaults::n_init(),
            merge_threshold: None,
            merge_refine: defaults::merge_refine(),
        }
    }

    /// Checks every rule, returning all the broken ones.
    pub fn check(&self) -> Result<ValidClusterParams, Vec<ClusterParamError>> {
        let mut errors = Vec::new();
        match (self.k, self.k_max) {
            (K::Count(k), _) if k < 1 => errors.push(ClusterParamError::K(k)),
            (K::Count(_), Some(_)) => errors.push(ClusterParamError::KMaxWithoutAuto),
            (K::Auto, Some(m)) if m < 2 => errors.push(ClusterParamError::KMax(m)),
            _ => {}
        }
        if self.max_iter < 1 {
            errors.push(ClusterParamError::MaxIter(self.max_iter));
        }
        if !(0.0..=1.0).contains(&self.tol) {
            errors.push(ClusterParamError::Tol(self.tol));
        }
        if !(self.alpha >= 1.0 && self.alpha.is_finite()) {
            errors.push(ClusterParamError::Alpha(self.alpha));
        }
        if !(self.max_similar > 0.0 && self.max_similar <= 1.0) {
            errors.push(ClusterParamError::MaxSimilar(self.max_similar));
        }
        if !(self.centroid_min_df_factor >= 0.0 && self.centroid_min_df_factor.is_finite()) {
            errors.push(ClusterParamError::PruneFactor(self.centroid_min_df_factor));
        }
        if self.n_init < 1 {
            errors.push(ClusterParamError::NInit(self.n_init));
        }
        if let Some(t) = self.merge_threshold
            && !(t > 0.0 && t <= 1.0)
        {
            errors.push(ClusterParamError::MergeThreshold(t));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidClusterParams {
            scope: self.scope,
            k: self.k,
            k_max: self.k_max,
            max_iter: self.max_iter,
            tol: self.tol,
            seed: self.seed,
            init: self.init,
            alpha: self.alpha,
            max_similar: self.max_similar as f32,
            centroid_min_df_factor: self.centroid_min_df_factor as f32,
            n_init: self.n_init,
            merge_threshold: self.merge_threshold.map(|t| t as f32),
            merge_refine: self.merge_refine,
            accelerate: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(f: fn(&mut ClusterParams)) -> Vec<ClusterParamError> {
        let mut p = ClusterParams::with_k(3);
        f(&mut p);
        p.check().unwrap_err()
    }

    #[test]
    fn defaults_are_valid() {
        let p = ClusterParams::with_k(3).check().unwrap();
        assert_eq!(
            (p.k(), p.max_iter(), p.init()),
            (Some(3), 50, InitMethod::SimilarCut)
        );
        assert_eq!((p.n_init(), p.centroid_min_df_factor()), (10, 0.01));
    }

    #[test]
    fn one_error_per_rule() {
        assert_eq!(broken(|p| p.k = K::Count(0)), [ClusterParamError::K(0)]);
        assert_eq!(
            broken(|p| {
                p.k = K::Auto;
                p.k_max = Some(1);
            }),
            [ClusterParamError::KMax(1)]
        );
        assert_eq!(
            broken(|p| p.k_max = Some(50)),
            [ClusterParamError::KMaxWithoutAuto]
        );
        assert_eq!(broken(|p| p.max_iter = 0), [ClusterParamError::MaxIter(0)]);
        assert_eq!(broken(|p| p.tol = -1.0), [ClusterParamError::Tol(-1.0)]);
        assert_eq!(broken(|p| p.alpha = 0.5), [ClusterParamError::Alpha(0.5)]);
        assert_eq!(
            broken(|p| p.max_similar = 0.0),
            [ClusterParamError::MaxSimilar(0.0)]
        );
        assert_eq!(broken(|p| p.centroid_min_df_factor = f64::NAN).len(), 1);
    }

    #[test]
    fn all_broken_rules_are_reported_at_once() {
        let errors = broken(|p| {
            p.k = K::Count(0);
            p.max_iter = 0;
        });
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn k_is_a_count_or_auto() {
        let p: ClusterParams = toml::from_str("k = \"auto\"\nk_max = 40").unwrap();
        assert_eq!((p.k, p.k_max), (K::Auto, Some(40)));
        let v = p.check().unwrap();
        assert_eq!((v.k(), v.k_to_fit(100_000, 10_000_000)), (None, 40));
        let p: ClusterParams = toml::from_str("k = \"auto\"").unwrap();
        let v = p.check().unwrap();
        // One cluster per 50 documents and per 5,000 entries, whichever is fewer, 10 to 200.
        assert_eq!(
            (
                v.k_to_fit(100, 100_000),
                v.k_to_fit(5_000, 1_000_000),
                v.k_to_fit(5_000, 150_000),
                v.k_to_fit(1_000_000, 100_000_000)
            ),
            (10, 100, 30, 200)
        );
        for bad in ["k = \"many\"", "k = 2.5", "k = -3"] {
            let e = toml::from_str::<ClusterParams>(bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("a number of clusters (an integer) or \"auto\""),
                "{bad}: {e}"
            );
        }
        // A count serialises as the integer it was: specs and models read as before.
        let p = ClusterParams::with_k(20);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["k"], 20);
        assert!(json.get("k_max").is_none());
    }

    #[test]
    fn init_names_parse() {
        let p: ClusterParams = toml::from_str("k = 2\ninit = \"kmeans++\"").unwrap();
        assert_eq!(p.init, InitMethod::KMeansPlusPlus);
        let p: ClusterParams = toml::from_str("k = 2\ninit = \"similar_cut\"").unwrap();
        assert_eq!(p.init, InitMethod::SimilarCut);
    }
}
