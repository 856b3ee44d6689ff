//! TF-IDF: the counted documents weighted against the vocabulary, into L2-normalised CSR rows.
//!
//! [`fit_transform`] is the whole of vectorising: count ([`super::counts`]), select the
//! vocabulary and idf ([`super::vocabulary`]), then remap each chunk to vocabulary columns
//! and weight it in parallel, straight into the CSR arrays. `tf` is the raw count or
//! `1 + ln(count)` (`sublinear_tf`); rows are L2-normalised, and a row with no kept terms
//! stays empty.
//!
//! # Parallelism
//! Chunk boundaries do not depend on the thread count and merges run in chunk order, so the
//! output is bit-identical for any number of threads.

use rayon::prelude::*;

use super::counts::{ChunkCounts, Counted, Merged, count, merge_dictionaries};
use super::params::ValidVectorizeParams;
use super::vocabulary::{self, Selection, Vocabulary};
use crate::sparse::{self, Csr};

/// A fitted TF-IDF model and the matrix of the documents it was fitted on.
#[derive(Debug)]
pub struct Vectorized {
    /// One L2-normalised row per input document.
    pub matrix: Csr,
    /// Terms in column order.
    pub vocabulary: Vocabulary,
    /// Inverse document frequency per column.
    pub idf: Vec<f32>,
    /// Documents whose row is empty (no kept term).
    pub n_empty: usize,
}

/// Fits a vocabulary and idf on `texts` and returns their TF-IDF rows, in input order.
pub fn fit_transform(params: &ValidVectorizeParams, texts: &[&str]) -> Vectorized {
    count(params, texts).fit_transform(params)
}

impl Counted {
    /// Fits the vocabulary and idf on the counted documents and returns their TF-IDF rows:
    /// the second half of [`fit_transform`]. `params` must be the ones the documents were
    /// counted with.
    pub fn fit_transform(self, params: &ValidVectorizeParams) -> Vectorized {
        let Counted { n_docs, chunks } = self;
        let t = std::time::Instant::now();

        let merged = merge_dictionaries(&chunks);
        let Merged {
            global_terms,
            df,
            total,
            remaps,
        } = merged;
        tracing::debug!(
            seconds = t.elapsed().as_secs_f64(),
            n_distinct = global_terms.len(),
            "merged chunk dictionaries"
        );
        let t = std::time::Instant::now();

        let Selection {
            vocabulary,
            idf,
            column_of,
        } = vocabulary::select(params, n_docs, &global_terms, &df, &total);
        drop(global_terms);
        tracing::debug!(
            seconds = t.elapsed().as_secs_f64(),
            "selected the vocabulary"
        );
        let t = std::time::Instant::now();

        // Weight and normalise rows in two passes, straight into the CSR arrays: count each
        // row's kept terms, then fill each chunk's slice in parallel.
        let kept_in = |chunk: &ChunkCounts, remap: &[u32], start: usize, end: usize| {
            chunk.term_ids[start..end]
                .iter()
                .filter(|&&local| kept_column(remap, &column_of, &idf, local).is_some())
                .count()
        };
        let row_lengths: Vec<Vec<usize>> = chunks
            .par_iter()
            .zip(&remaps)
            .map(|(chunk, remap)| {
                let mut start = 0usize;
                chunk
                    .row_lengths
                    .iter()
                    .map(|&len| {
                        let end = start + len as usize;
                        let kept = kept_in(chunk, remap, start, end);
                        start = end;
                        kept
                    })
                    .collect()
            })
            .collect();
        let mut indptr = Vec::with_capacity(n_docs + 1);
        indptr.push(0usize);
        let mut n_empty = 0;
        for &len in row_lengths.iter().flatten() {
            n_empty += usize::from(len == 0);
            indptr.push(indptr.last().unwrap() + len);
        }
        let nnz = *indptr.last().unwrap();
        let mut indices = vec![0u32; nnz];
        let mut data = vec![0.0f32; nnz];
        let mut slices = Vec::with_capacity(chunks.len());
        let (mut rest_i, mut rest_d) = (indices.as_mut_slice(), data.as_mut_slice());
        for lengths in &row_lengths {
            let n: usize = lengths.iter().sum();
            let (i, ri) = rest_i.split_at_mut(n);
            let (d, rd) = rest_d.split_at_mut(n);
            slices.push((i, d));
            (rest_i, rest_d) = (ri, rd);
        }
        let tf = TfTable::new(params.sublinear_tf);
        chunks
            .par_iter()
            .zip(&remaps)
            .zip(slices)
            .for_each(|((chunk, remap), (indices, data))| {
                weight_chunk(chunk, remap, &column_of, &idf, &tf, indices, data)
            });
        drop(chunks);
        let matrix = Csr::new((n_docs, vocabulary.len()), indptr, indices, data);
        tracing::debug!(
            seconds = t.elapsed().as_secs_f64(),
            "weighted and normalised rows"
        );
        Vectorized {
            matrix,
            vocabulary,
            idf,
            n_empty,
        }
    }
}

/// What [`Vectorized::rebase`] changed.
#[derive(Debug)]
pub struct Rebased {
    /// For each old column, its new column, or `u32::MAX` for a dropped term.
    pub column_of: Vec<u32>,
    /// For each old column, new idf / old idf: what its weights were multiplied by before
    /// the rows were normalised again.
    pub scale: Vec<f32>,
    /// Each new column's document frequency in the larger input.
    pub df: Vec<u32>,
}

impl Rebased {
    /// Appends a row of the sample's matrix in the rebased columns to `indices` and
    /// `weights`: dropped terms left out, each weight times its column's scale, not
    /// normalised.
    fn map_row(&self, row: sparse::Row<'_>, indices: &mut Vec<u32>, weights: &mut Vec<f32>) {
        for (&j, &w) in row.indices.iter().zip(row.values) {
            let (column, s) = (self.column_of[j as usize], self.scale[j as usize]);
            if column != u32::MAX && s != 0.0 {
                indices.push(column);
                weights.push(w * s);
            }
        }
    }
}

/// The items of `values` where `keep` is true.
fn kept<T: Copy>(values: &[T], keep: &[bool]) -> Vec<T> {
    values
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(&v, _)| v)
        .collect()
}

impl Vectorized {
    /// Moves a vocabulary fitted on a sample onto the document frequencies `df` (one per
    /// column) counted over the `n_docs` documents of the whole input: keeps the columns whose
    /// `df` is within `params`' `min_df` / `max_df` (`max_features` is not applied again),
    /// gives them the idf of the whole input, and re-weights the rows (each weight times new
    /// idf / old idf, then normalised again, which is the row the new idf gives). The
    /// vocabulary keeps the sample's df: it is what the sample's rows contain.
    ///
    /// A column whose idf is 0 (a term in every sampled document, without `idf_add_one`)
    /// stores no weight, so a pass over the documents cannot count it: its df is the sample's
    /// share scaled to `n_docs`.
    pub fn rebase(&mut self, params: &ValidVectorizeParams, df: &[u32], n_docs: usize) -> Rebased {
        assert_eq!(df.len(), self.vocabulary.len(), "one df per column");
        let n_sample = self.matrix.rows().max(1) as f64;
        let df: Vec<u32> = df
            .iter()
            .zip(&self.idf)
            .zip(self.vocabulary.df())
            .map(|((&whole, &idf), &sample)| {
                if idf == 0.0 {
                    (f64::from(sample) / n_sample * n_docs as f64).round() as u32
                } else {
                    whole
                }
            })
            .collect();
        let df = df.as_slice();
        let keep: Vec<bool> = df
            .iter()
            .map(|&d| vocabulary::within_bounds(params, n_docs, d))
            .collect();
        let mut column_of = vec![u32::MAX; keep.len()];
        for (column, (j, _)) in keep.iter().enumerate().filter(|(_, k)| **k).enumerate() {
            column_of[j] = column as u32;
        }
        let new_idf: Vec<f32> = df
            .iter()
            .map(|&d| vocabulary::idf_of(params, n_docs, d))
            .collect();
        let scale: Vec<f32> = new_idf
            .iter()
            .zip(&self.idf)
            .map(|(&new, &old)| if old == 0.0 { 0.0 } else { new / old })
            .collect();
        let rebased = Rebased {
            column_of,
            scale,
            df: kept(df, &keep),
        };
        let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
        let mut n_empty = 0;
        for i in 0..self.matrix.rows() {
            let start = indices.len();
            rebased.map_row(sparse::row(&self.matrix, i), &mut indices, &mut data);
            finish_row(&mut data[start..]);
            n_empty += usize::from(indices.len() == start);
            indptr.push(indices.len());
        }
        self.idf = kept(&new_idf, &keep);
        self.vocabulary = self.vocabulary.retain(&keep);
        self.matrix = Csr::new(
            (self.matrix.rows(), self.vocabulary.len()),
            indptr,
            indices,
            data,
        );
        self.n_empty = n_empty;
        rebased
    }
}

/// Term frequency weights, looked up for small counts: `count` or `1 + ln(count)`.
#[derive(Debug)]
pub(super) struct TfTable {
    sublinear: bool,
    small: Vec<f32>,
}

impl TfTable {
    const SMALL: u32 = 256;

    pub(super) fn new(sublinear: bool) -> Self {
        let small = (0..Self::SMALL)
            .map(|c| Self::compute(sublinear, c))
            .collect();
        Self { sublinear, small }
    }

    fn compute(sublinear: bool, count: u32) -> f32 {
        if sublinear {
            1.0 + (count as f32).ln()
        } else {
            count as f32
        }
    }

    #[inline]
    pub(super) fn get(&self, count: u32) -> f32 {
        match self.small.get(count as usize) {
            Some(&w) => w,
            None => Self::compute(self.sublinear, count),
        }
    }
}

/// The column of a chunk's local term, when the term is in the vocabulary and weighs more than
/// zero (an idf of 0 gives a zero weight, which is not stored).
#[inline]
fn kept_column(remap: &[u32], column_of: &[u32], idf: &[f32], local: u32) -> Option<u32> {
    let column = column_of[remap[local as usize] as usize];
    (column != u32::MAX && idf[column as usize] != 0.0).then_some(column)
}

/// Writes the weighted, sorted and L2-normalised rows of one chunk into its slices of the CSR
/// arrays (sized by the counting pass).
fn weight_chunk(
    chunk: &ChunkCounts,
    remap: &[u32],
    column_of: &[u32],
    idf: &[f32],
    tf: &TfTable,
    indices: &mut [u32],
    data: &mut [f32],
) {
    let mut row: Vec<(u32, f32)> = Vec::new();
    let (mut start, mut out) = (0usize, 0usize);
    for &len in &chunk.row_lengths {
        let end = start + len as usize;
        row.clear();
        for (&local, &count) in chunk.term_ids[start..end]
            .iter()
            .zip(&chunk.counts[start..end])
        {
            if let Some(column) = kept_column(remap, column_of, idf, local) {
                row.push((column, tf.get(count) * idf[column as usize]));
            }
        }
        row.sort_unstable_by_key(|&(c, _)| c);
        for (k, &(c, w)) in row.iter().enumerate() {
            indices[out + k] = c;
            data[out + k] = w;
        }
        finish_row(&mut data[out..out + row.len()]);
        out += row.len();
        start = end;
    }
    debug_assert_eq!(out, data.len());
}

/// L2-normalises a weighted row and snaps it to the summation grid: the last step of every
/// TF-IDF row, fitted or transformed.
pub(super) fn finish_row(values: &mut [f32]) {
    sparse::normalize(values);
    sparse::snap_to_sum_grid(values);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::params::testing::plain as params;
    use crate::text::{DfBound, VectorizeParams};

    #[test]
    fn a_rebased_sample_is_what_the_whole_inputs_idf_gives() {
        let whole = [
            "apple banana cherry",
            "apple apple date",
            "banana elder",
            "apple fig fig",
            "banana cherry",
            "grape",
        ];
        let sample = [whole[0], whole[1], whole[3]];
        let mut v = fit_transform(&params(DfBound::Count(1), DfBound::Fraction(1.0)), &sample);
        // The whole input's df of each sampled term, as a streamed pass counts it.
        let transformer = crate::text::Transformer::new(
            params(DfBound::Count(1), DfBound::Fraction(1.0)),
            v.vocabulary.terms(),
            v.idf.clone(),
        );
        let x = transformer.transform(&whole).matrix;
        let mut df = vec![0u32; v.vocabulary.len()];
        for &j in x.indices() {
            df[j as usize] += 1;
        }
        let rebase_params = params(DfBound::Count(2), DfBound::Fraction(1.0));
        let rebased = v.rebase(&rebase_params, &df, whole.len());
        // date and fig occur once in the whole input: dropped by min_df = 2. apple is in
        // every sampled document (idf 0, so no weight to count): its df is scaled, 3/3 of 6.
        assert_eq!(v.vocabulary.terms(), &["apple", "banana", "cherry"]);
        assert_eq!(rebased.df, vec![6, 3, 2]);
        assert_eq!(v.vocabulary.df(), &[3, 1, 1], "the sample's df stays");
        // The rows are those the whole input's vocabulary and idf give the sampled texts.
        let expected =
            crate::text::Transformer::new(rebase_params, v.vocabulary.terms(), v.idf.clone())
                .transform(&sample)
                .matrix;
        assert_eq!(
            v.matrix.indptr().raw_storage(),
            expected.indptr().raw_storage()
        );
        assert_eq!(v.matrix.indices(), expected.indices());
        for (a, b) in v.matrix.data().iter().zip(expected.data()) {
            assert!((a - b).abs() < 1e-6, "{a} against {b}");
        }
        assert_eq!(v.idf[0], 0.0);
        let idf_banana = (7.0f64 / 4.0).ln();
        assert!((f64::from(v.idf[1]) - idf_banana).abs() < 1e-6);
        assert_eq!(rebased.column_of[3], u32::MAX);
    }

    #[test]
    fn tfidf_matches_hand_computed_values() {
        // n = 3; df(apple) = 2, df(banana) = 1, df(cherry) = 1.
        let texts = ["apple apple banana", "apple cherry", "zz"];
        let v = fit_transform(&params(DfBound::Count(1), DfBound::Fraction(1.0)), &texts);
        assert_eq!(v.vocabulary.terms(), &["apple", "banana", "cherry", "zz"]);
        assert_eq!(v.vocabulary.df(), &[2, 1, 1, 1]);
        let idf_apple = (4.0f64 / 3.0).ln();
        let idf_rare = (4.0f64 / 2.0).ln();
        assert!((f64::from(v.idf[0]) - idf_apple).abs() < 1e-6);
        assert!((f64::from(v.idf[1]) - idf_rare).abs() < 1e-6);
        // Row 0: apple tf 2, banana tf 1.
        let (a, b) = (2.0 * idf_apple, idf_rare);
        let norm = (a * a + b * b).sqrt();
        let r0 = sparse::row(&v.matrix, 0);
        assert_eq!(r0.indices, &[0, 1]);
        assert!((f64::from(r0.values[0]) - a / norm).abs() < 1e-6);
        assert!((f64::from(r0.values[1]) - b / norm).abs() < 1e-6);
        sparse::check_invariants(&v.matrix).unwrap();
    }

    #[test]
    fn sublinear_tf_and_idf_add_one() {
        let p = VectorizeParams {
            stopwords: "none".into(),
            min_df: DfBound::Count(1),
            max_df: DfBound::Fraction(1.0),
            sublinear_tf: true,
            idf_add_one: true,
            ..VectorizeParams::default()
        }
        .check()
        .unwrap();
        let v = fit_transform(&p, &["aa aa aa bb", "bb"]);
        let idf_aa = (3.0f64 / 2.0).ln() + 1.0;
        let idf_bb = (3.0f64 / 3.0).ln() + 1.0;
        assert!((f64::from(v.idf[0]) - idf_aa).abs() < 1e-6);
        assert!((f64::from(v.idf[1]) - idf_bb).abs() < 1e-6);
        let a = (1.0 + 3.0f64.ln()) * idf_aa;
        let b = idf_bb;
        let r0 = sparse::row(&v.matrix, 0);
        assert!((f64::from(r0.values[0]) - a / (a * a + b * b).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn documents_without_kept_terms_are_empty_rows() {
        let v = fit_transform(
            &params(DfBound::Count(2), DfBound::Fraction(1.0)),
            &["shared alone", "shared", "", "nothing here"],
        );
        assert_eq!(v.matrix.rows(), 4);
        assert_eq!(v.n_empty, 2);
        assert_eq!(sparse::row(&v.matrix, 2).nnz(), 0);
    }

    #[test]
    fn output_does_not_depend_on_chunking_or_threads() {
        let texts: Vec<String> = (0..3000)
            .map(|i| format!("w{} w{} w{} common", i % 7, i % 13, i % 101))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let p = params(DfBound::Count(1), DfBound::Fraction(1.0));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| fit_transform(&p, &refs));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| fit_transform(&p, &refs));
        assert_eq!(one.matrix, two.matrix);
        assert_eq!(one.vocabulary, two.vocabulary);
    }
}
