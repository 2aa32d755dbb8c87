//! Conformance: every AppSpec of the shared corpus gets the outcome the CodeDeploy agent gives it
//! (`expected.tsv`); where the agent crashes, shoal must give a clean accept or reject.

use shoal_shared::appspec;

#[test]
fn corpus_outcomes_match_the_reference_agent() {
    let Some(dir) = shoal_tests::appspec_corpus() else {
        return;
    };
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (file, outcome) in shoal_tests::appspec_corpus_expectations(&dir) {
        let source = std::fs::read(dir.join(&file)).expect("read corpus file");
        let source = String::from_utf8_lossy(&source);
        let result = std::panic::catch_unwind(|| appspec::parse(&source));
        let got = match &result {
            Ok(Ok(_)) => "ACCEPT",
            Ok(Err(_)) => "REJECT",
            Err(_) => "PANIC",
        };
        let ok = match outcome.as_str() {
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
