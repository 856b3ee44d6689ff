//! Test harness: build hive-partitioned Parquet trees, run the binary, read outputs back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{Array, Float32Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Path of the repository root (where `data/` and `jobs/` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Three topics with distinct vocabularies, so k = 3 has a right answer.
pub const TOPICS: [&[&str]; 3] = [
    &[
        "apple", "banana", "cherry", "fruit", "orchard", "harvest", "juice", "peach",
    ],
    &[
        "engine", "wheel", "brake", "car", "driver", "garage", "tyre", "motor",
    ],
    &[
        "planet", "orbit", "rocket", "star", "galaxy", "launch", "moon", "comet",
    ],
];

/// A deterministic document of `topic`, varied by `i`: six consecutive words of the topic's
/// eight (wrapping), so any two documents of a topic share at least four words.
pub fn doc(topic: usize, i: usize) -> String {
    let words = TOPICS[topic];
    (0..6)
        .map(|j| words[(i + j) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes a Parquet file with string columns `doc_id` and `text` (nullable).
pub fn write_docs(path: &Path, ids: &[String], texts: &[Option<String>]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(ids)),
            Arc::new(StringArray::from(texts.to_vec())),
        ],
    )
    .unwrap();
    write_batch(path, &batch);
}

/// Writes any record batch as a Parquet file, creating parent directories.
pub fn write_batch(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// A hive tree `root/dt=2018-06-0{1..n}/part-00000.parquet`, `per_topic` docs of each topic
/// per partition. Returns the total number of documents.
pub fn hive_tree(root: &Path, n_partitions: usize, per_topic: usize) -> usize {
    let mut total = 0;
    for p in 1..=n_partitions {
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        for topic in 0..3 {
            for i in 0..per_topic {
                ids.push(format!("p{p}-t{topic}-{i}"));
                texts.push(Some(doc(topic, i + p)));
            }
        }
        total += ids.len();
        write_docs(
            &root.join(format!("dt=2018-06-0{p}/part-00000.parquet")),
            &ids,
            &texts,
        );
    }
    total
}

/// A job spec for `input` → `output` with `k` clusters.
pub fn spec(dir: &Path, input: &Path, output: &Path, k: usize) -> PathBuf {
    let path = dir.join("job.toml");
    std::fs::write(
        &path,
        format!(
            "[input]\npath = {:?}\n[vectorize]\nmin_df = 1\nmax_df = 1.0\n[cluster]\nk = {k}\n[output]\npath = {:?}\n",
            input, output
        ),
    )
    .unwrap();
    path
}

/// The binary under test: this build's, or `TEXTCLUSTER_TEST_BIN` (to show that a test
/// fails against another build, an older one say).
pub fn binary() -> PathBuf {
    std::env::var_os("TEXTCLUSTER_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_textcluster")),
        PathBuf::from,
    )
}

/// Runs the binary with `args` in the repository root.
pub fn textcluster(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(repo())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs `jobs/sample.toml` (the real sample in `data/`) writing to `out`, with extra args.
pub fn run_sample(out: &Path, extra: &[&str]) -> String {
    let out_arg = format!("output.path={}", out.display());
    let mut args = vec!["run", "jobs/sample.toml", "--set", &out_arg];
    args.extend_from_slice(extra);
    ok(&textcluster(&args))
}

/// The manifest of the latest run under `out`, read with the library's own type.
pub fn manifest(out: &Path) -> textcluster::output::Manifest {
    textcluster::output::Manifest::read(out).unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Asserts exit code `code` and returns stderr.
pub fn fails(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    stderr
}

/// All record batches of one Parquet file.
pub fn read_batches(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `(doc_id, cluster, similarity)` rows of a labels file.
pub fn read_labels(path: &Path) -> Vec<(String, i32, f32)> {
    let mut rows = Vec::new();
    for b in read_batches(path) {
        let ids = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let cl = b.column(1).as_any().downcast_ref::<Int32Array>().unwrap();
        let sim = b.column(2).as_any().downcast_ref::<Float32Array>().unwrap();
        for i in 0..b.num_rows() {
            rows.push((ids.value(i).to_owned(), cl.value(i), sim.value(i)));
        }
        assert_eq!(cl.null_count(), 0);
    }
    rows
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// The clusters the documents of `topic` (from [`doc`] ids) landed in.
pub fn clusters_of_topic(
    labels: &[(String, i32, f32)],
    topic: usize,
) -> std::collections::BTreeSet<i32> {
    let tag = format!("-t{topic}-");
    labels
        .iter()
        .filter(|(id, _, _)| id.contains(&tag))
        .map(|r| r.1)
        .collect()
}

/// `strace`, which the kill tests use to hold syscalls open. Installed from Debian's archive
/// when it is missing (as root, or with passwordless `sudo`); the test fails if it cannot be.
pub fn strace() -> PathBuf {
    let find = || {
        ["/usr/bin/strace", "/bin/strace"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = find() {
        return path;
    }
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = find() {
        return path;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|e| panic!("cannot run apt-get to install strace: {e}"))
    };
    apt(&["update", "-qq"]);
    let installed = apt(&["install", "-y", "-qq", "strace"]);
    find().unwrap_or_else(|| {
        panic!(
            "strace is missing and could not be installed: {}",
            String::from_utf8_lossy(&installed.stderr)
        )
    })
}

/// Runs the binary with `args` in the repository root under `strace`, each call of `inject`
/// (a comma-separated syscall list) delayed by `delay_us` microseconds, with extra `envs`;
/// SIGKILLs the job itself after `after`. Returns true when the run finished first.
pub fn run_killed_after(
    strace: &Path,
    inject: &str,
    delay_us: u32,
    args: &[&str],
    envs: &[(&str, &str)],
    after: std::time::Duration,
) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let command: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let script = format!(
        "echo $$ > {:?}; exec {:?} -q {}",
        pid_file,
        env!("CARGO_BIN_EXE_textcluster"),
        command.join(" ")
    );
    let mut child = Command::new(strace)
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={inject}"))
        .arg("-e")
        .arg(format!("inject={inject}:delay_enter={delay_us}"))
        .args(["sh", "-c", &script])
        .envs(envs.iter().copied())
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        // SIGKILL to the job itself (strace then exits).
        Command::new("kill")
            .args(["-9", pid.trim()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
    }
    child.wait().unwrap().success()
}

/// Every file under `dir` with its bytes, to compare before and after a failed run.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}
