//! `docs/job-spec.md` is generated from the spec types' doc comments and their defaults, and
//! this test fails when the page drifts from the code. After changing a section's fields or
//! their comments, regenerate it with
//! `TEXTCLUSTER_UPDATE_DOCS=1 cargo test --test it docs::` and commit the page.
//!
//! Each section's keys are the `pub` fields of its struct, in declaration order, with the `///`
//! comment above each; the default is the value a spec that sets only the required keys gets,
//! serialised as TOML ("required" for the keys such a spec must set, "unset" for an optional
//! key without a default).

use std::path::Path;

use textcluster::output::JobSpec;

use crate::util::repo;

/// The job spec's sections: name, the file and struct that define its keys.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("input", "src/output/spec.rs", "InputSpec"),
    ("vectorize", "src/text/params.rs", "VectorizeParams"),
    ("cluster", "src/cluster/params.rs", "ClusterParams"),
    ("keywords", "src/label/mod.rs", "KeywordParams"),
    ("fit", "src/output/spec.rs", "FitSpec"),
    ("model", "src/output/spec.rs", "ModelSpec"),
    ("output", "src/output/spec.rs", "OutputSpec"),
];

/// The smallest valid spec: only the required keys.
const MINIMAL: &str = "[input]\npath = \"in\"\n[cluster]\nk = 2\n[output]\npath = \"out\"\n";

/// A field of a spec struct: its name and its doc comment, one paragraph.
struct Field {
    name: String,
    doc: String,
}

/// The doc comment above each `pub` field of `struct_name` in `file`, in order.
fn fields(file: &Path, struct_name: &str) -> Vec<Field> {
    let text = fs_err::read_to_string(file).unwrap();
    let start = text
        .find(&format!("pub struct {struct_name} {{"))
        .unwrap_or_else(|| panic!("no `pub struct {struct_name}` in {}", file.display()));
    let body = &text[start..];
    let body = &body[..body.find("\n}").expect("struct ends")];
    let mut out = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    let mut skipped = false;
    for line in body.lines().skip(1) {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix("///") {
            doc.push(comment.trim().to_owned());
        } else if line.starts_with("#[") {
            skipped |= line.contains("skip)") || line.contains("(skip");
        } else if let Some(rest) = line.strip_prefix("pub ") {
            let name = rest.split(':').next().unwrap().trim().to_owned();
            if !skipped {
                out.push(Field {
                    name,
                    doc: doc.join(" "),
                });
            }
            doc.clear();
            skipped = false;
        }
    }
    out
}

/// The doc comment above `pub <field>:` of `JobSpec`: the section's introduction.
fn section_doc(section: &str) -> String {
    fields(&repo().join("src/output/spec.rs"), "JobSpec")
        .into_iter()
        .find(|f| f.name == section)
        .map(|f| f.doc)
        .unwrap_or_default()
}

fn default_of(defaults: &toml::Table, section: &str, key: &str) -> String {
    let minimal: toml::Table = MINIMAL.parse().unwrap();
    let required = minimal
        .get(section)
        .and_then(|s| s.as_table())
        .is_some_and(|s| s.contains_key(key));
    if required {
        return "required".into();
    }
    // Keys a spec leaves out when they hold their default, so serialising shows none.
    let unserialised: &[(&str, &str, String)] = &[(
        "fit",
        "refine",
        textcluster::output::spec::DEFAULT_REFINE.to_string(),
    )];
    if let Some((_, _, value)) = unserialised
        .iter()
        .find(|(s, k, _)| *s == section && *k == key)
    {
        return format!("`{value}`");
    }
    match defaults.get(section).and_then(|s| s.get(key)) {
        Some(value) => format!("`{value}`"),
        None => "unset".into(),
    }
}

/// The whole page.
fn generate() -> String {
    let spec = JobSpec::parse(Path::new("job.toml"), MINIMAL, &[] as &[&str]).unwrap();
    let defaults: toml::Table = toml::Table::try_from(&spec).unwrap();
    let mut page = String::from(
        "# Job spec reference\n\n\
         <!-- Generated from the spec types' doc comments by tests/it/docs.rs; do not edit. -->\n\n\
         A job spec is a TOML file. Unknown keys are rejected by name, so a typo is never \
         silently ignored. Relative paths are relative to the working directory. Any key can be \
         overridden on the command line with `--set section.key=value` (read as TOML: `2` is an \
         integer, `0.5` a float, `true` a boolean, anything else a string).\n\n\
         The smallest valid spec:\n\n```toml\n",
    );
    page.push_str(MINIMAL);
    page.push_str("```\n");
    for &(section, file, struct_name) in SECTIONS {
        page.push_str(&format!(
            "\n## `[{section}]`\n\n{}\n\n",
            section_doc(section)
        ));
        page.push_str("| key | default | meaning |\n|---|---|---|\n");
        for field in fields(&repo().join(file), struct_name) {
            let default = default_of(&defaults, section, &field.name);
            page.push_str(&format!(
                "| `{}` | {} | {} |\n",
                field.name,
                default.replace('|', "\\|"),
                field.doc.replace('|', "\\|")
            ));
        }
    }
    page.push_str(&format!(
        "\n## `[storage]`\n\n{}\n\nKeys are `object_store`'s option names (`aws_region = \
         \"eu-west-1\"`, `endpoint = \"http://127.0.0.1:9000\"`, `allow_http = \"true\"`); see \
         [Storage](operations.md#storage). Optional; empty by default.\n",
        section_doc("storage")
    ));
    page
}

#[test]
fn the_job_spec_reference_matches_the_code() {
    let path = repo().join("docs/job-spec.md");
    let generated = generate();
    if std::env::var_os("TEXTCLUSTER_UPDATE_DOCS").is_some() {
        fs_err::write(&path, &generated).unwrap();
    }
    let on_disk = fs_err::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/job-spec.md has drifted from the spec types' doc comments\n\
         hint: run `TEXTCLUSTER_UPDATE_DOCS=1 cargo test --test it docs::` and commit the page"
    );
}

#[test]
fn every_section_and_key_of_the_spec_is_documented() {
    let page = generate();
    let spec = JobSpec::parse(Path::new("job.toml"), MINIMAL, &[] as &[&str]).unwrap();
    let defaults: toml::Table = toml::Table::try_from(&spec).unwrap();
    for (section, value) in &defaults {
        assert!(page.contains(&format!("## `[{section}]`")), "{section}");
        for key in value.as_table().into_iter().flat_map(|t| t.keys()) {
            assert!(
                page.contains(&format!("| `{key}` |")),
                "`{section}.{key}` is not in the reference"
            );
        }
    }
    for &(section, file, struct_name) in SECTIONS {
        for field in fields(&repo().join(file), struct_name) {
            assert!(
                !field.doc.is_empty(),
                "`{section}.{}` has no doc comment",
                field.name
            );
        }
    }
}
