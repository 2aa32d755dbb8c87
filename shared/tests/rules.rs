//! One fixture per AppSpec rule, under `tests/fixtures/appspec/`. Each file says in its header
//! what shoal must do with it:
//!
//! ```text
//! # expect: accept | reject <kind>
//! # error: <text the error must contain>
//! # warn: <text one warning must contain>      (repeatable)
//! # warnings: <exact number of warnings>
//! ```

use shoal_shared::appspec;

#[test]
fn every_fixture_gets_its_declared_outcome() {
    let dir = shoal_tests::fixture("appspec");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the rule fixtures in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("read fixture");
        let name = path.file_name().expect("file name").to_string_lossy();
        if let Err(why) = check(&source) {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn check(source: &str) -> Result<(), String> {
    let header = |tag: &str| -> Vec<String> {
        source
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("# {tag}: ")))
            .map(str::to_owned)
            .collect()
    };
    let expect = header("expect").pop().ok_or("no `# expect:` header")?;
    match (appspec::parse(source), expect.split_once(' ')) {
        (Ok(parsed), None) if expect == "accept" => {
            let shown: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
            for want in header("warn") {
                if !shown.iter().any(|w| w.contains(&want)) {
                    return Err(format!(
                        "no warning contains {want:?}; warnings: {shown:#?}"
                    ));
                }
            }
            if let Some(count) = header("warnings").pop() {
                let count: usize = count.parse().map_err(|_| "bad `# warnings:`")?;
                if shown.len() != count {
                    return Err(format!("expected {count} warnings, got {shown:#?}"));
                }
            }
            Ok(())
        }
        (Err(error), Some(("reject", kind))) => {
            if error.kind() != kind {
                return Err(format!(
                    "expected kind {kind}, got {} ({error})",
                    error.kind()
                ));
            }
            let shown = error.to_string();
            match header("error").pop() {
                Some(want) if !shown.contains(&want) => {
                    Err(format!("error {shown:?} does not contain {want:?}"))
                }
                _ => Ok(()),
            }
        }
        (Ok(_), _) => Err(format!("accepted, expected {expect}")),
        (Err(error), _) => Err(format!("rejected ({error}), expected {expect}")),
    }
}
