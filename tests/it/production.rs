//! The production contract: output modes, failure isolation, exit codes, the lock, and
//! crash safety (SIGKILL, then resume).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use textcluster::output::manifest::RunStatus;

use crate::util::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Every file under `dir` with its bytes and mtime.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, SystemTime)> {
    tree(dir)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .map(|f| {
            let p = dir.join(&f);
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            (f, std::fs::read(&p).unwrap(), mtime)
        })
        .collect()
}

fn statuses(out: &Path) -> Vec<String> {
    manifest(out)
        .partitions
        .iter()
        .map(|p| {
            serde_json::to_value(p.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn setup(partitions: usize, per_topic: usize) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, partitions, per_topic);
    let job = spec(dir.path(), &input, &out, 3);
    (dir, input, out, job)
}

#[test]
fn skip_existing_skips_committed_partitions_and_redoes_changed_ones() {
    let (_dir, input, out, job) = setup(3, 5);
    let job = job.to_str().unwrap();
    ok(&textcluster(&["run", job]));
    let before = snapshot(&out);
    ok(&textcluster(&[
        "run",
        job,
        "--set",
        "output.mode=skip_existing",
    ]));
    assert_eq!(statuses(&out), ["skipped", "skipped", "skipped"]);
    assert_eq!(
        snapshot(&out),
        before,
        "a skipping run must not touch outputs"
    );
    assert!(out.join("_SUCCESS").exists());

    // Changing one input file redoes that partition only; changing a parameter redoes all.
    let ids = vec!["new".to_owned()];
    write_docs(
        &input.join("dt=2018-06-02/part-00001.parquet"),
        &ids,
        &[Some(doc(0, 1))],
    );
    ok(&textcluster(&[
        "run",
        job,
        "--set",
        "output.mode=skip_existing",
    ]));
    assert_eq!(statuses(&out), ["skipped", "succeeded", "skipped"]);
    ok(&textcluster(&[
        "run",
        job,
        "--set",
        "output.mode=skip_existing",
        "--set",
        "cluster.seed=9",
    ]));
    assert_eq!(statuses(&out), ["succeeded", "succeeded", "succeeded"]);
}

#[test]
fn overwrite_of_one_partition_leaves_the_others_byte_for_byte() {
    let (_dir, _input, out, job) = setup(3, 5);
    let job = job.to_str().unwrap();
    ok(&textcluster(&["run", job]));
    let before = snapshot(&out);
    std::thread::sleep(Duration::from_millis(20));
    ok(&textcluster(&[
        "run",
        job,
        "--partition",
        "dt=2018-06-03",
        "--set",
        "cluster.seed=5",
    ]));
    let after = snapshot(&out);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.0, a.0);
        if b.0.contains("dt=2018-06-03") {
            assert_ne!(b.2, a.2, "{} was not rewritten", b.0);
        } else {
            assert_eq!((&b.1, b.2), (&a.1, a.2), "{} changed", b.0);
        }
    }
}

#[test]
fn error_if_exists_stops_before_any_work() {
    let (_dir, _input, out, job) = setup(2, 3);
    let job = job.to_str().unwrap();
    ok(&textcluster(&["run", job]));
    let before = snapshot(&out);
    let stderr = fails(
        &textcluster(&["run", job, "--set", "output.mode=error_if_exists"]),
        1,
    );
    assert!(
        stderr.contains("already exists") && stderr.contains("dt=2018-06-01"),
        "{stderr}"
    );
    assert_eq!(snapshot(&out), before);
}

/// Replaces every occurrence of `marker` in a Parquet file with bytes that are not UTF-8.
/// The footer stays valid, so the plan accepts the file and the read fails.
fn poison(path: &Path, marker: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let m = marker.as_bytes();
    let mut hits = 0;
    for i in 0..bytes.len().saturating_sub(m.len()) {
        if &bytes[i..i + m.len()] == m {
            bytes[i] = 0xff;
            bytes[i + 1] = 0xfe;
            hits += 1;
        }
    }
    assert!(hits > 0);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_bad_partition_fails_alone_with_exit_code_3() {
    let (_dir, input, out, job) = setup(3, 4);
    let victim = input.join("dt=2018-06-02/part-00001.parquet");
    write_docs(
        &victim,
        &["bad".to_owned()],
        &[Some("POISONMARKER apple banana".into())],
    );
    poison(&victim, "POISONMARKER");
    let job = job.to_str().unwrap();
    let run = textcluster(&["run", job]);
    let stderr = fails(&run, 3);
    assert!(stderr.contains("dt=2018-06-02"), "{stderr}");
    assert_eq!(statuses(&out), ["succeeded", "failed", "succeeded"]);
    let m = manifest(&out);
    assert_eq!(m.status, RunStatus::Partial);
    assert_eq!(m.exit_code, 3);
    assert!(
        m.partitions[1]
            .error
            .as_deref()
            .unwrap()
            .contains("dt=2018-06-02")
    );
    assert!(!out.join("_SUCCESS").exists());
    assert!(out.join("labels/dt=2018-06-01/part-00000.parquet").exists());
    assert!(!out.join("labels/dt=2018-06-02").exists());
    assert!(!out.join("_staging").exists());

    // --fail-fast on one thread: the partitions after the failure are not started.
    let run = textcluster(&[
        "run",
        job,
        "--fail-fast",
        "--threads",
        "1",
        "--partition",
        "dt=2018-06-02",
        "--partition",
        "dt=2018-06-03",
    ]);
    // Nothing was committed, so nothing changed: the last manifest stays.
    let before = manifest(&out).run_id;
    let stderr = fails(&run, 1);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("0 partitions succeeded, 0 skipped, 1 failed, 1 cancelled"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("nothing written"), "{stdout}");
    assert_eq!(manifest(&out).run_id, before);
    assert_eq!(statuses(&out), ["succeeded", "failed", "succeeded"]);
}

#[test]
fn a_run_whose_every_partition_fails_before_committing_changes_nothing() {
    let (_dir, input, out, job) = setup(2, 4);
    let job = job.to_str().unwrap();
    ok(&textcluster(&["run", job]));
    let before = tree(&out);
    let bytes = |p: &str| std::fs::read(out.join(p)).unwrap();
    let (manifest_before, labels_before) = (
        bytes("manifest.json"),
        bytes("labels/dt=2018-06-01/part-00000.parquet"),
    );
    assert!(out.join("_SUCCESS").exists());
    // A second file in every partition whose text is corrupt: each fails at read time, after
    // the plan has checked the footers.
    for p in ["dt=2018-06-01", "dt=2018-06-02"] {
        let victim = input.join(p).join("part-00001.parquet");
        write_docs(
            &victim,
            &["bad".to_owned()],
            &[Some("POISONMARKER apple banana".into())],
        );
        poison(&victim, "POISONMARKER");
    }
    let run = textcluster(&["run", job]);
    let stderr = fails(&run, 1);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("nothing written"), "{stdout}{stderr}");
    // `_SUCCESS`, the manifest, the run records and the tables are as they were.
    assert_eq!(tree(&out), before);
    assert_eq!(bytes("manifest.json"), manifest_before);
    assert_eq!(
        bytes("labels/dt=2018-06-01/part-00000.parquet"),
        labels_before
    );
}

#[test]
fn a_panic_inside_a_partition_is_recorded_as_its_failure() {
    let (_dir, _input, out, job) = setup(3, 3);
    let run = Command::new(env!("CARGO_BIN_EXE_textcluster"))
        .args(["run", job.to_str().unwrap()])
        .env("TEXTCLUSTER_FAILPOINT_PANIC", "dt=2018-06-02")
        .output()
        .unwrap();
    let stderr = fails(&run, 3);
    assert!(
        stderr.contains("panic") && stderr.contains("dt=2018-06-02"),
        "{stderr}"
    );
    assert_eq!(statuses(&out), ["succeeded", "failed", "succeeded"]);
    let error = manifest(&out).partitions[1].error.clone().unwrap();
    assert!(error.contains("internal error (panic)"), "{error}");
    assert!(!out.join("labels/dt=2018-06-02").exists());
}

#[test]
fn a_live_lock_stops_a_second_run_and_a_dead_one_is_taken_over() {
    let (_dir, _input, out, job) = setup(1, 3);
    let job = job.to_str().unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let lock = |pid: u32| {
        let body = serde_json::json!({"pid": pid, "host": host.trim(), "started_at": 1});
        let path = out.join("_locks/dt=2018-06-01/lock.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body.to_string()).unwrap();
    };
    lock(std::process::id()); // this test process: alive
    let stderr = fails(&textcluster(&["run", job]), 2);
    assert!(stderr.contains("locked by a running job"), "{stderr}");
    assert!(!out.join("labels").exists());

    lock(u32::MAX - 3); // no such process
    let run = textcluster(&["run", job]);
    ok(&run);
    assert!(String::from_utf8_lossy(&run.stderr).contains("stale lock"));
    assert!(!out.join("_locks/dt=2018-06-01/lock.json").exists());
}

#[test]
fn runs_on_disjoint_partitions_of_one_output_proceed_side_by_side() {
    // An Airflow backfill fans out one task per partition onto the same output path.
    let (_dir, _input, out, job) = setup(4, 40);
    let job = job.to_str().unwrap();
    let spawn = |p: &str| {
        Command::new(env!("CARGO_BIN_EXE_textcluster"))
            .args(["run", job, "-q", "--partition", p])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = [
        "dt=2018-06-01",
        "dt=2018-06-02",
        "dt=2018-06-03",
        "dt=2018-06-04",
    ]
    .into_iter()
    .map(spawn)
    .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(out.join("labels")).unwrap().count(), 4);
    assert!(!out.join("_staging").exists());
}

#[test]
fn sigkill_at_any_point_then_resume_gives_the_uninterrupted_outputs() {
    let dir = tmp();
    let input = dir.path().join("in");
    hive_tree(&input, 10, 200);
    let reference = dir.path().join("reference");
    let job_ref = spec(dir.path(), &input, &reference, 3);
    let start = Instant::now();
    ok(&textcluster(&[
        "run",
        job_ref.to_str().unwrap(),
        "--threads",
        "1",
    ]));
    let full = start.elapsed();
    let expected: Vec<(String, Vec<u8>)> = snapshot(&reference)
        .into_iter()
        .map(|(f, b, _)| (f, b))
        .collect();
    let mut interrupted_midway = 0;

    for (i, fraction) in [0.05, 0.3, 0.5, 0.7, 0.95].into_iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let job = spec(dir.path(), &input, &out, 3);
        let mut child = Command::new(env!("CARGO_BIN_EXE_textcluster"))
            .args(["run", job.to_str().unwrap(), "--threads", "1", "-q"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        let committed = tree(&out)
            .iter()
            .filter(|f| f.starts_with("labels/"))
            .count();
        interrupted_midway += usize::from(committed > 0 && committed < 10);
        // What a reader sees after the crash: only complete partitions.
        for f in tree(&out)
            .into_iter()
            .filter(|f| f.ends_with(".parquet") && !f.starts_with('_'))
        {
            assert!(
                !read_batches(&out.join(&f)).is_empty(),
                "{f} is unreadable after the kill"
            );
        }
        let resumed = textcluster(&[
            "run",
            job.to_str().unwrap(),
            "--set",
            "output.mode=skip_existing",
        ]);
        ok(&resumed);
        let got: Vec<(String, Vec<u8>)> =
            snapshot(&out).into_iter().map(|(f, b, _)| (f, b)).collect();
        assert_eq!(got.len(), expected.len(), "kill at {fraction}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                g == e,
                "kill at {fraction}: {} differs from the uninterrupted run",
                g.0
            );
        }
        assert!(out.join("_SUCCESS").exists());
        assert!(!out.join("_staging").exists());
        assert!(tree(&out.join("_locks")).is_empty(), "locks left behind");
    }
    assert!(
        interrupted_midway > 0,
        "no kill landed between the first and the last commit"
    );
}

#[test]
fn metrics_file_reports_the_run_and_keeps_the_last_success_time() {
    let (dir, input, out, job) = setup(2, 3);
    let metrics = dir.path().join("textcluster.prom");
    let job = job.to_str().unwrap();
    ok(&textcluster(&[
        "run",
        job,
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&metrics).unwrap();
    let out_label = format!("output=\"{}\"", out.display());
    assert!(
        text.contains(&format!("textcluster_documents{{{out_label}}} 18")),
        "{text}"
    );
    assert!(text.contains(&format!(
        "textcluster_partitions{{{out_label},status=\"succeeded\"}} 2"
    )));
    assert!(text.contains("textcluster_stage_seconds{") && text.ends_with("# EOF\n"));
    let success_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("textcluster_last_success_timestamp_seconds{"))
            .map(str::to_owned)
    };
    let first = success_line(&text).expect("a successful run sets the last success time");

    let bad = input.join("dt=2018-06-02/part-00000.parquet");
    std::fs::write(&bad, b"").unwrap();
    fails(
        &textcluster(&["run", job, "--metrics-file", metrics.to_str().unwrap()]),
        3,
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.contains("status=\"failed\"} 1"), "{text}");
    assert_eq!(
        success_line(&text),
        Some(first),
        "a failed run keeps the last success time"
    );
}

#[test]
fn a_kill_while_partitions_are_swapped_in_never_leaves_one_absent() {
    let strace = strace();
    let (_dir, _input, out, job) = setup(3, 4);
    let job = job.to_str().unwrap();
    ok(&textcluster(&["run", job]));
    let tables = ["labels", "clusters", "centroids", "keywords", "similarity"];
    let every_partition = |why: &str| {
        for table in tables {
            for p in ["dt=2018-06-01", "dt=2018-06-02", "dt=2018-06-03"] {
                let file = out.join(table).join(p).join("part-00000.parquet");
                assert!(file.exists(), "{why}: {table}/{p} is absent");
                // Reads the whole file (panics on a torn one); a table may have no rows.
                read_batches(&file);
            }
        }
    };
    // Every rename-family call waits 150 ms before it runs, so each commit step is held open
    // long enough for a kill to land inside it; kills at spread offsets hit different steps.
    let mut killed_in_commit = 0;
    for offset_ms in [250, 450, 650, 900, 1200, 1600, 2100, 2700] {
        let finished = run_killed_after(
            &strace,
            "rename,renameat,renameat2",
            150_000,
            &["run", job],
            &[],
            Duration::from_millis(offset_ms),
        );
        killed_in_commit += usize::from(!finished && out.join("_staging").exists());
        every_partition(&format!("killed after {offset_ms} ms"));
    }
    assert!(
        killed_in_commit > 0,
        "no kill landed while a run was committing"
    );
    // The next run takes over the dead locks, removes the staging, and completes.
    ok(&textcluster(&["run", job]));
    every_partition("after the resumed run");
    assert!(!out.join("_staging").exists());
}

/// The steps of a commit where `TEXTCLUSTER_FAILPOINT_KILL` makes a debug build SIGKILL
/// itself, in protocol order (the README's table).
pub const CRASH_POINTS: [&str; 9] = [
    "staged",
    "journal-written",
    "records-removed",
    "first-placed",
    "all-placed",
    "records-written",
    "journal-removed",
    "before-manifest",
    "before-success",
];

#[test]
fn a_kill_at_each_commit_step_leaves_old_or_new_and_the_next_run_ends_on_the_new_clustering() {
    let (dir, _input, out, job) = setup(3, 4);
    let job = job.to_str().unwrap();
    let global = ["--set", "cluster.scope=global"];
    let tables_of = |root: &Path| -> Vec<(String, Vec<u8>)> {
        snapshot(root)
            .into_iter()
            // Models are immutable and written before the commit: not part of it.
            .filter(|(f, _, _)| !f.starts_with('_') && !f.starts_with("models/"))
            .map(|(f, b, _)| (f, b))
            .collect()
    };
    // The committed clustering (seed 1) and the one being committed (seed 2), in global
    // scope: one commit covers 3 label partitions and the 3 cluster tables.
    let other = dir.path().join("other");
    let with_out = format!("output.path={}", other.display());
    ok(&textcluster(
        &[
            &["run", job, "--set", &with_out, "--set", "cluster.seed=2"][..],
            &global[..],
        ]
        .concat(),
    ));
    let new = tables_of(&other);
    for step in CRASH_POINTS {
        let _ = std::fs::remove_dir_all(&out);
        ok(&textcluster(
            &[&["run", job, "--set", "cluster.seed=1"][..], &global[..]].concat(),
        ));
        let old = tables_of(&out);
        let killed = Command::new(env!("CARGO_BIN_EXE_textcluster"))
            .args(
                [
                    &["-q", "run", job, "--set", "cluster.seed=2"][..],
                    &global[..],
                ]
                .concat(),
            )
            .env("TEXTCLUSTER_FAILPOINT_KILL", step)
            .current_dir(repo())
            .output()
            .unwrap();
        assert_eq!(
            killed.status.code(),
            None,
            "{step}: the failpoint did not kill the run"
        );
        let after = tables_of(&out);
        assert_eq!(after.len(), old.len(), "{step}: {:?}", tree(&out));
        let mut n_new = 0;
        for ((f, bytes), ((_, o), (_, n))) in after.iter().zip(old.iter().zip(&new)) {
            assert!(bytes == o || bytes == n, "{step}: {f} is neither version");
            n_new += usize::from(bytes == n && o != n);
            read_batches(&out.join(f));
        }
        let journal = tree(&out.join("_staging"))
            .iter()
            .any(|f| f.contains("/_journal-"));
        let changed = old.iter().zip(&new).filter(|(o, n)| o != n).count();
        assert!(
            n_new == 0 || n_new == changed || journal,
            "{step}: a mix of two clusterings ({n_new} of {changed} files new) with no journal to finish it"
        );
        let resumed = textcluster(
            &[
                &[
                    "run",
                    job,
                    "--set",
                    "cluster.seed=2",
                    "--set",
                    "output.mode=skip_existing",
                ][..],
                &global[..],
            ]
            .concat(),
        );
        ok(&resumed);
        let statuses = statuses(&out);
        if journal {
            assert!(
                statuses.iter().all(|s| s == "skipped"),
                "{step}: not rolled forward: {statuses:?}"
            );
        }
        assert!(
            tables_of(&out) == new,
            "{step}: the rerun did not end on the new clustering"
        );
        assert!(!out.join("_staging").exists(), "{step}: staging left");
        assert!(out.join("_SUCCESS").exists(), "{step}");
        eprintln!(
            "crash at {step}: {n_new}/{changed} changed files new after the kill, journal {journal}, rerun {:?}",
            statuses[0]
        );
    }
}
