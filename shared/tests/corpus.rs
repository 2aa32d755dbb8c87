//! Conformance: every AppSpec of the shared corpus gets the outcome the CodeDeploy agent gives it
//! (`expected.tsv`); where the agent crashes, shoal must give a clean accept or reject.

use std::path::PathBuf;

use shoal_shared::appspec;

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SHOAL_APPSPEC_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/appspec"),
    };
    dir.join("expected.tsv").is_file().then_some(dir)
}

#[test]
fn corpus_outcomes_match_the_reference_agent() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "\n!!! SKIPPED: the AppSpec corpus was not found (set SHOAL_APPSPEC_CORPUS or put \
             shared/corpus/appspec beside the repository) !!!\n"
        );
        return;
    };
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).expect("read expected.tsv");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (file, outcome) = line.split_once('\t').expect("file<TAB>outcome");
        let source = std::fs::read(dir.join(file)).expect("read corpus file");
        let source = String::from_utf8_lossy(&source);
        let result = std::panic::catch_unwind(|| appspec::parse(&source));
        let got = match &result {
            Ok(Ok(_)) => "ACCEPT",
            Ok(Err(_)) => "REJECT",
            Err(_) => "PANIC",
        };
        let ok = match outcome.trim() {
            "CRASH" => got != "PANIC",
            want => got == want,
        };
        if !ok {
            let detail = match result {
                Ok(Err(e)) => e.to_string(),
                _ => String::new(),
            };
            mismatches.push(format!("{file}: expected {outcome}, got {got} {detail}"));
        }
        checked += 1;
    }
    assert_eq!(checked, 51, "the corpus lists 51 files");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
