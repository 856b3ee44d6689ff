//! Every example job spec in `jobs/` parses, passes every parameter check, and plans when its
//! input is on this machine.

use std::path::Path;

use textcluster::output::JobSpec;

use crate::util::*;

#[test]
fn every_job_spec_parses_and_its_parameters_check() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("jobs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        n += 1;
        let spec = JobSpec::load(&path, &[] as &[&str])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.display();
        assert!(spec.vectorize.check().is_ok(), "{name}: [vectorize]");
        assert!(spec.cluster.check().is_ok(), "{name}: [cluster]");
        assert!(spec.keywords.check().is_ok(), "{name}: [keywords]");
        let root = spec.input.path.selection().unwrap().root;
        if repo().join(&root).exists() {
            let relative = path.strip_prefix(repo()).unwrap_or(&path);
            let plan = ok(&textcluster(&["plan", relative.to_str().unwrap()]));
            assert!(plan.contains("\"n_partitions\""), "{name}: {plan}");
        } else {
            eprintln!(
                "{name}: input `{}` not here; plan not checked",
                root.display()
            );
        }
    }
    assert!(n >= 4, "only {n} job specs found in jobs/");
    assert!(Path::new(&repo().join("jobs/sample.toml")).is_file());
}
