//! Reading a run's committed outputs back into a [`Report`].
//!
//! The manifest ([`Manifest::read`]) gives the spec, the run and the figures of the
//! clusterings it wrote; the committed tables give everything else, so a clustering committed
//! by an earlier run still loads (without figures). Example texts come from the input files
//! listed in the manifest, or from `--input`; a missing input only costs the examples.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Int32Type, Int64Type};
use tracing::{info, warn};

use super::model::{ClusterView, ClusteringView, Example, Report, RunInfo, TopicTerms};
use super::relevance_candidates;
use super::{LAMBDA_STEP, ReportError, ReportOptions, TOP_TERMS, mds, round3, snippet};
use crate::io::commit::Staging;
use crate::io::{Documents, InputError, PartitionFilter, PartitionKey, read_files, read_output};
use crate::model::resolve::{CommittedClustering, committed_clusterings};
use crate::output::Manifest;
use crate::output::Table;
use crate::output::manifest::ClusteringReport;

/// Reads a run's outputs under `out` into a [`Report`].
pub fn load(out: &Path, options: &ReportOptions) -> Result<Report, ReportError> {
    let manifest = Manifest::read(out)?;
    let merge_threshold = manifest.spec.cluster.merge_threshold;

    let all = committed_clusterings(out, &manifest)?;
    if all.is_empty() {
        return Err(ReportError::NotAnOutput {
            path: out.to_path_buf(),
            reason: "no committed clustering (no labels with their centroids or model)".into(),
        });
    }
    let filter = PartitionFilter::parse(&options.partitions)?;
    let chosen: Vec<&CommittedClustering> = all
        .iter()
        .filter(|c| filter.is_empty() || c.label_keys.iter().any(|k| filter.matches(k)))
        .collect();
    if chosen.is_empty() {
        return Err(ReportError::NoMatchingClustering {
            out: out.to_path_buf(),
            filter: options.partitions.clone(),
            available: all.iter().map(|c| c.name.clone()).collect(),
        });
    }
    let texts = TextSource::new(&manifest, options);

    let mut clusterings = Vec::with_capacity(chosen.len());
    for clustering in chosen {
        let source = Source {
            clustering,
            figures: manifest
                .clusterings
                .iter()
                .find(|c| c.key == clustering.name),
            label_keys: clustering
                .label_keys
                .iter()
                .filter(|k| filter.is_empty() || filter.matches(k))
                .collect(),
            out,
        };
        let mut view = source.load(&texts, options.examples)?;
        if options.term_counts {
            let vectorize = match clustering.tables.model() {
                Some(model) => &model.vectorize,
                None => &manifest.spec.vectorize,
            };
            view.topics.counts =
                texts.term_counts(vectorize, &source.label_keys, &view.topics.names)?;
        }
        view.merge_threshold = match clustering.tables.model() {
            Some(model) => model.cluster.merge_threshold,
            None => merge_threshold,
        };
        info!(
            key = clustering.name,
            n_clusters = view.clusters.len(),
            "loaded clustering"
        );
        clusterings.push(view);
    }
    Ok(Report {
        out: out.display().to_string(),
        run: RunInfo {
            run_id: manifest.run_id,
            status: manifest.status,
            tool_version: manifest.tool.version,
            started_at: humantime::format_rfc3339_seconds(manifest.started_at).to_string(),
            seconds_total: manifest.seconds_total,
            spec: manifest.spec,
        },
        clusterings,
    })
}

/// Where example texts (and term counts) come from: the input files of each partition.
struct TextSource<'m> {
    manifest: &'m Manifest,
    /// `--input`: read texts from here instead of the input the manifest records.
    input: Option<PathBuf>,
}

impl<'m> TextSource<'m> {
    fn new(manifest: &'m Manifest, options: &ReportOptions) -> Self {
        Self {
            manifest,
            input: options.input.clone(),
        }
    }

    /// The documents of partition `key`'s input; `None` (logged, saying what is lost) when
    /// its files are gone or unreadable: the report is still useful without them. A store or
    /// disk that fails (access refused, throttled past the retries) is an error.
    fn documents(
        &self,
        key: &PartitionKey,
        without: &str,
    ) -> Result<Option<Documents>, ReportError> {
        let files = self.manifest.input_files(key, self.input.as_deref())?;
        // Stops at the first missing file; a store that fails is an error, not a missing file.
        let mut present = !files.is_empty();
        for f in &files {
            present = if crate::io::store::is_remote(f) {
                crate::io::store::exists(f).map_err(InputError::from)?
            } else {
                f.is_file()
            };
            if !present {
                break;
            }
        }
        if !present {
            warn!(partition = %key, "input files not found; {without} (use --input)");
            return Ok(None);
        }
        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let input = &self.manifest.spec.input;
        let what = format!("input partition `{key}`");
        match read_files(&paths, &what, &input.id_column, &input.text_column) {
            Ok(docs) => Ok(Some(docs)),
            Err(e) if e.is_environmental() => Err(e.into()),
            Err(e) => {
                warn!(partition = %key, error = %e, "cannot read the input; {without}");
                Ok(None)
            }
        }
    }

    /// Occurrences of each of `names` in the input documents of `keys`, tokenised with the
    /// run's settings; `None` when the settings do not check or an input cannot be read.
    fn term_counts(
        &self,
        vectorize: &crate::text::VectorizeParams,
        keys: &[&PartitionKey],
        names: &[String],
    ) -> Result<Option<Vec<u64>>, ReportError> {
        let Ok(mut params) = vectorize.check() else {
            return Ok(None);
        };
        let mut buffer = crate::text::TokenBuffer::default();
        if params.analyzer().tokenizer().learns_korean() {
            // The tokens need the word table the run learned: learned again from the input.
            let mut counter = crate::text::WordCounter::default();
            let analyzer = params.analyzer();
            if !self.each_text(keys, |text| {
                analyzer.count_korean(text, &mut buffer, &mut counter)
            })? {
                return Ok(None);
            }
            params = params.with_korean(counter.learn());
        }
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut counts = vec![0u64; names.len()];
        let analyzer = params.analyzer();
        let read = self.each_text(keys, |text| {
            analyzer.for_each_token(text, &mut buffer, |t| {
                if let Some(&j) = index.get(t) {
                    counts[j] += 1;
                }
            })
        })?;
        Ok(read.then_some(counts))
    }

    /// Calls `f` with every text of the input of `keys`, one partition read at a time; false
    /// when an input cannot be read.
    fn each_text(
        &self,
        keys: &[&PartitionKey],
        mut f: impl FnMut(&str),
    ) -> Result<bool, ReportError> {
        for key in keys {
            let Some(docs) = self.documents(
                key,
                "pyLDAvis term frequencies are estimated from the centroids",
            )?
            else {
                return Ok(false);
            };
            docs.texts.iter().flatten().for_each(&mut f);
        }
        Ok(true)
    }

    /// Texts of the wanted ids found in partition `key`'s input.
    fn texts(
        &self,
        key: &PartitionKey,
        wanted: &HashSet<&str>,
        into: &mut HashMap<String, String>,
    ) -> Result<(), ReportError> {
        let Some(docs) = self.documents(key, "the report has no example documents for them")?
        else {
            return Ok(());
        };
        for i in 0..docs.len() {
            if docs.ids.is_null(i) || docs.texts.is_null(i) {
                continue;
            }
            let id = docs.ids.value(i);
            if wanted.contains(id) {
                into.insert(id.to_owned(), snippet(docs.texts.value(i)));
            }
        }
        Ok(())
    }
}

/// One committed clustering to load.
struct Source<'a> {
    out: &'a Path,
    clustering: &'a CommittedClustering,
    /// The manifest's entry, when the latest run wrote this clustering.
    figures: Option<&'a ClusteringReport>,
    /// The label partitions that belong to it.
    label_keys: Vec<&'a PartitionKey>,
}

/// Centroid weights of one clustering as term distributions.
struct Topics {
    /// Every term of any centroid, by first appearance.
    names: Vec<String>,
    /// Per cluster, `(term, p(w|c))`; empty for an empty cluster.
    per_cluster: Vec<Vec<(u32, f64)>>,
    p_term: Vec<f64>,
    sizes: Vec<u64>,
}

impl Source<'_> {
    fn file(&self, table: Table) -> PathBuf {
        self.clustering.tables.file(table)
    }

    fn inconsistent(&self, message: String) -> ReportError {
        ReportError::Inconsistent {
            path: self.file(Table::Centroids),
            message,
        }
    }

    fn load(&self, texts: &TextSource, n_examples: usize) -> Result<ClusteringView, ReportError> {
        let topics = self.topics()?;
        let k = topics.sizes.len();

        // Candidate terms per cluster: the union of the top terms over the λ grid.
        let mut shown: Vec<Vec<(u32, f64)>> = Vec::with_capacity(k);
        let mut used: BTreeMap<u32, u32> = BTreeMap::new();
        for entries in &topics.per_cluster {
            let candidates = relevance_candidates(entries, &topics.p_term, TOP_TERMS, LAMBDA_STEP);
            for &(t, _) in &candidates {
                let next = used.len() as u32;
                used.entry(t).or_insert(next);
            }
            shown.push(candidates);
        }
        let mut terms = vec![String::new(); used.len()];
        let mut log_p_term = vec![0.0; used.len()];
        for (&t, &new) in &used {
            terms[new as usize] = topics.names[t as usize].clone();
            log_p_term[new as usize] = round3(topics.p_term[t as usize].ln());
        }

        let sim = self.similarity(&topics)?;
        let mut similarity = Vec::with_capacity(k * k.saturating_sub(1) / 2);
        for a in 0..k {
            for b in a + 1..k {
                similarity.push((sim[a * k + b].max(0.0) * 1000.0).round() as u16);
            }
        }
        let mut distances: Vec<f64> = sim
            .iter()
            .map(|s| (2.0 * (1.0 - s)).max(0.0).sqrt())
            .collect();
        for i in 0..k {
            distances[i * k + i] = 0.0;
        }
        let coords = mds::classical_mds(&distances, k);
        let order = mds::similarity_order(&sim, k);
        let keywords = self.keywords(k)?;
        let nearest = self.nearest(k, n_examples)?;
        let mut wanted: BTreeMap<&PartitionKey, HashSet<&str>> = BTreeMap::new();
        for (_, label_key, id) in nearest.iter().flatten() {
            wanted.entry(label_key).or_default().insert(id.as_str());
        }
        let mut texts_by_id: HashMap<String, String> = HashMap::new();
        for (label_key, ids) in &wanted {
            texts.texts(label_key, ids, &mut texts_by_id)?;
        }

        let diagnostics = |c: usize| {
            self.figures
                .and_then(|f| f.clusters.iter().find(|r| r.cluster == c as i32))
        };
        let clusters = (0..k)
            .map(|c| ClusterView {
                id: c as i32,
                size: topics.sizes[c],
                x: round3(coords[c][0]),
                y: round3(coords[c][1]),
                keywords: keywords[c]
                    .iter()
                    .take(10)
                    .map(|(_, t)| t.clone())
                    .collect(),
                mean_similarity: diagnostics(c).map(|d| round3(d.mean_similarity)),
                ambiguous_share: diagnostics(c).map(|d| round3(d.ambiguous_share)),
                unsettled: diagnostics(c).map(|d| d.unsettled),
                moved_last_3: diagnostics(c).map(|d| d.moved_last_3),
                term_ids: shown[c].iter().map(|(t, _)| used[t]).collect(),
                log_p: shown[c].iter().map(|(_, p)| round3(p.ln())).collect(),
                examples: nearest[c]
                    .iter()
                    .filter_map(|(s, _, id)| {
                        texts_by_id.get(id).map(|text| Example {
                            doc_id: id.clone(),
                            similarity: *s,
                            text: text.clone(),
                        })
                    })
                    .collect(),
            })
            .collect();
        let figures = self.figures.map(|f| {
            let mut map = match serde_json::to_value(f) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            map.remove("clusters");
            map.remove("objective");
            map
        });
        Ok(ClusteringView {
            key: self.clustering.name.clone(),
            figures,
            merge_threshold: None,
            n_docs: topics.sizes.iter().sum(),
            clusters,
            terms,
            log_p_term,
            similarity,
            order,
            topics: TopicTerms {
                names: topics.names,
                p_term: topics.p_term,
                p_term_given_cluster: topics.per_cluster,
                sizes: topics.sizes,
                counts: None,
            },
        })
    }

    /// The centroids as distributions: `p(w|c)` is centroid `c` L1-normalised, `p(w)` the
    /// size-weighted mean of all `p(w|c)`.
    fn topics(&self) -> Result<Topics, ReportError> {
        let mut sizes_by_id: BTreeMap<i32, u64> = BTreeMap::new();
        let mut entries: Vec<(i32, String, f32)> = Vec::new();
        for batch in read_output(&self.file(Table::Centroids), Table::Centroids)? {
            let cluster = column_i32(&batch, "cluster");
            let size = batch
                .column_by_name("size")
                .expect("checked")
                .as_primitive::<Int64Type>();
            let term = batch
                .column_by_name("term")
                .expect("checked")
                .as_string::<i32>();
            let weight = batch
                .column_by_name("weight")
                .expect("checked")
                .as_primitive::<Float32Type>();
            for i in 0..batch.num_rows() {
                let c = cluster.value(i);
                sizes_by_id.insert(c, size.value(i).max(0) as u64);
                entries.push((c, term.value(i).to_owned(), weight.value(i)));
            }
        }
        // k: the manifest's figure when present, else one past the largest cluster id seen.
        let seen_max = sizes_by_id
            .keys()
            .next_back()
            .map(|&c| c as usize + 1)
            .unwrap_or(0);
        let k = self.figures.map_or(0, |f| f.n_clusters).max(seen_max);
        if sizes_by_id.keys().any(|&c| c < 0) {
            return Err(self.inconsistent("negative cluster id".into()));
        }
        let mut term_index: HashMap<&str, u32> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        let mut per_cluster: Vec<Vec<(u32, f64)>> = vec![Vec::new(); k];
        for (c, term, w) in &entries {
            let id = *term_index.entry(term.as_str()).or_insert_with(|| {
                names.push(term.as_str());
                names.len() as u32 - 1
            });
            per_cluster[*c as usize].push((id, f64::from(*w).max(0.0)));
        }
        let mut sizes = vec![0u64; k];
        for (&c, &s) in &sizes_by_id {
            sizes[c as usize] = s;
        }
        let mut p_term = vec![0.0f64; names.len()];
        let total_size: u64 = sizes.iter().sum();
        for (c, entries) in per_cluster.iter_mut().enumerate() {
            let l1: f64 = entries.iter().map(|e| e.1).sum();
            if l1 > 0.0 {
                entries.iter_mut().for_each(|e| e.1 /= l1);
            } else {
                entries.clear();
            }
            for &(t, p) in entries.iter() {
                p_term[t as usize] += sizes[c] as f64 * p;
            }
        }
        if total_size > 0 {
            p_term.iter_mut().for_each(|p| *p /= total_size as f64);
        }
        Ok(Topics {
            names: names.into_iter().map(str::to_owned).collect(),
            per_cluster,
            p_term,
            sizes,
        })
    }

    /// The committed similarity table as a full `k × k` matrix (1 on the diagonal of
    /// non-empty clusters).
    fn similarity(&self, topics: &Topics) -> Result<Vec<f64>, ReportError> {
        let k = topics.sizes.len();
        let mut sim = vec![0.0f64; k * k];
        for i in 0..k {
            sim[i * k + i] = if topics.per_cluster[i].is_empty() {
                0.0
            } else {
                1.0
            };
        }
        for batch in read_output(&self.file(Table::Similarity), Table::Similarity)? {
            let a = column_i32(&batch, "cluster_a");
            let b = column_i32(&batch, "cluster_b");
            let cos = batch
                .column_by_name("cosine")
                .expect("checked")
                .as_primitive::<Float32Type>();
            for i in 0..batch.num_rows() {
                let (a, b) = (a.value(i), b.value(i));
                if a < 0 || b < 0 || a as usize >= k || b as usize >= k {
                    return Err(self.inconsistent(format!(
                        "similarity pair ({a}, {b}) is outside the {k} clusters"
                    )));
                }
                let v = f64::from(cos.value(i)).clamp(-1.0, 1.0);
                sim[a as usize * k + b as usize] = v;
                sim[b as usize * k + a as usize] = v;
            }
        }
        Ok(sim)
    }

    /// Keywords of each cluster, by rank.
    fn keywords(&self, k: usize) -> Result<Vec<Vec<(i32, String)>>, ReportError> {
        let mut keywords: Vec<Vec<(i32, String)>> = vec![Vec::new(); k];
        for batch in read_output(&self.file(Table::Keywords), Table::Keywords)? {
            let cluster = column_i32(&batch, "cluster");
            let rank = column_i32(&batch, "rank");
            let term = batch
                .column_by_name("term")
                .expect("checked")
                .as_string::<i32>();
            for i in 0..batch.num_rows() {
                let c = cluster.value(i);
                if c >= 0 && (c as usize) < k {
                    keywords[c as usize].push((rank.value(i), term.value(i).to_owned()));
                }
            }
        }
        keywords.iter_mut().for_each(|kw| kw.sort());
        Ok(keywords)
    }

    /// The `n` documents nearest each centroid, from the labels: `(similarity, partition,
    /// doc_id)`, most similar first, ties by id.
    #[allow(clippy::type_complexity)]
    fn nearest(
        &self,
        k: usize,
        n: usize,
    ) -> Result<Vec<Vec<(f32, &PartitionKey, String)>>, ReportError> {
        let mut nearest: Vec<Vec<(f32, &PartitionKey, String)>> = vec![Vec::new(); k];
        if n == 0 {
            return Ok(nearest);
        }
        for &label_key in &self.label_keys {
            for batch in read_output(
                &Staging::committed_file(self.out, Table::Labels, label_key),
                Table::Labels,
            )? {
                let ids = batch
                    .column_by_name("doc_id")
                    .expect("checked")
                    .as_string::<i32>();
                let cluster = column_i32(&batch, "cluster");
                let similarity = batch
                    .column_by_name("similarity")
                    .expect("checked")
                    .as_primitive::<Float32Type>();
                for i in 0..batch.num_rows() {
                    let c = cluster.value(i);
                    if c < 0 || c as usize >= k {
                        continue;
                    }
                    let (s, id) = (similarity.value(i), ids.value(i));
                    let list = &mut nearest[c as usize];
                    let beats_last = list
                        .last()
                        .is_none_or(|last| s > last.0 || (s == last.0 && id < last.2.as_str()));
                    if list.len() < n || beats_last {
                        list.push((s, label_key, id.to_owned()));
                        list.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
                        list.truncate(n);
                    }
                }
            }
        }
        Ok(nearest)
    }
}

fn column_i32<'a>(batch: &'a RecordBatch, name: &str) -> &'a arrow::array::Int32Array {
    batch
        .column_by_name(name)
        .expect("checked by read_output")
        .as_primitive::<Int32Type>()
}
