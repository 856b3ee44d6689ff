//! Batches of CSR rows written once to an unnamed temporary file and read back in order, as
//! often as needed: a computation that passes over more rows than memory holds vectorises them
//! once instead of on every pass.
//!
//! The file lives in the system's temporary directory (`TMPDIR`) and has no name, so the
//! operating system removes it when it is dropped or the process dies. Per batch it holds the
//! row and entry counts, each row's length (u32), the column indices (u32) and the values
//! (f32), little-endian: 8 bytes an entry. Values are stored as their bits, so a batch reads
//! back exactly as it was written.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::Csr;

/// A temporary file of row batches over `n_cols` columns.
#[derive(Debug)]
pub struct RowSpill {
    writer: BufWriter<File>,
    n_cols: usize,
    n_batches: usize,
    bytes: u64,
}

impl RowSpill {
    /// An empty spill in the temporary directory.
    pub fn new(n_cols: usize) -> io::Result<Self> {
        Ok(Self {
            writer: BufWriter::with_capacity(1 << 20, tempfile::tempfile()?),
            n_cols,
            n_batches: 0,
            bytes: 0,
        })
    }

    /// Appends the rows of `m`.
    pub fn push(&mut self, m: &Csr) -> io::Result<()> {
        assert_eq!(m.cols(), self.n_cols, "rows over the spill's columns");
        // A pass may have left the file's position anywhere.
        self.writer.seek(SeekFrom::End(0))?;
        let w = &mut self.writer;
        w.write_all(&(m.rows() as u64).to_le_bytes())?;
        w.write_all(&(m.nnz() as u64).to_le_bytes())?;
        for pair in m.indptr().raw_storage().windows(2) {
            w.write_all(&((pair[1] - pair[0]) as u32).to_le_bytes())?;
        }
        for &j in m.indices() {
            w.write_all(&j.to_le_bytes())?;
        }
        for &v in m.data() {
            w.write_all(&v.to_bits().to_le_bytes())?;
        }
        self.n_batches += 1;
        self.bytes += 16 + 4 * m.rows() as u64 + 8 * m.nnz() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The batches pushed so far, in order, from the start of the file.
    pub fn batches(&mut self) -> io::Result<SpilledBatches<'_>> {
        self.writer.flush()?;
        let file = self.writer.get_mut();
        file.seek(SeekFrom::Start(0))?;
        Ok(SpilledBatches {
            reader: BufReader::with_capacity(1 << 20, file),
            n_cols: self.n_cols,
            remaining: self.n_batches,
        })
    }
}

/// The batches of a [`RowSpill`], read back one at a time.
#[derive(Debug)]
pub struct SpilledBatches<'a> {
    reader: BufReader<&'a mut File>,
    n_cols: usize,
    remaining: usize,
}

impl SpilledBatches<'_> {
    fn read_u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.reader.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// `n` little-endian 4-byte words.
    fn read_words(&mut self, n: usize) -> io::Result<Vec<[u8; 4]>> {
        let mut bytes = vec![0u8; 4 * n];
        self.reader.read_exact(&mut bytes)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect())
    }

    fn read_batch(&mut self) -> io::Result<Csr> {
        let n_rows = self.read_u64()? as usize;
        let nnz = self.read_u64()? as usize;
        let mut indptr = Vec::with_capacity(n_rows + 1);
        indptr.push(0usize);
        for len in self.read_words(n_rows)? {
            indptr.push(indptr.last().expect("starts at 0") + u32::from_le_bytes(len) as usize);
        }
        let indices: Vec<u32> = self
            .read_words(nnz)?
            .into_iter()
            .map(u32::from_le_bytes)
            .collect();
        let data: Vec<f32> = self
            .read_words(nnz)?
            .into_iter()
            .map(|b| f32::from_bits(u32::from_le_bytes(b)))
            .collect();
        Csr::try_new((n_rows, self.n_cols), indptr, indices, data).map_err(|(.., e)| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a spilled batch reads back malformed: {e}"),
            )
        })
    }
}

impl Iterator for SpilledBatches<'_> {
    type Item = io::Result<Csr>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.read_batch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: &[&[(u32, f32)]]) -> Csr {
        let mut indptr = vec![0];
        let (mut indices, mut data) = (Vec::new(), Vec::new());
        for row in rows {
            for &(j, v) in *row {
                indices.push(j);
                data.push(v);
            }
            indptr.push(indices.len());
        }
        Csr::new((rows.len(), 5), indptr, indices, data)
    }

    #[test]
    fn batches_read_back_bit_for_bit_in_order_on_every_pass() {
        let a = batch(&[&[(0, 0.6), (3, 0.8)], &[], &[(4, 1.0)]]);
        let b = batch(&[&[(1, f32::MIN_POSITIVE), (2, 1.0 / 3.0)]]);
        let empty = batch(&[]);
        let mut spill = RowSpill::new(5).unwrap();
        for m in [&a, &empty, &b] {
            spill.push(m).unwrap();
        }
        assert_eq!(spill.bytes(), (16 + 12 + 24) + 16 + (16 + 4 + 16));
        for _ in 0..2 {
            let back: Vec<Csr> = spill.batches().unwrap().map(Result::unwrap).collect();
            assert_eq!(back, [a.clone(), empty.clone(), b.clone()]);
            let bits = |m: &Csr| m.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back[2]), bits(&b));
        }
        // More batches after a pass are read on the next one.
        spill.push(&a).unwrap();
        assert_eq!(spill.batches().unwrap().count(), 4);
    }
}
