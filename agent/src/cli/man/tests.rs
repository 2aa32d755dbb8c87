use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser as _;

use super::super::exit::{FAILURE, OK, USAGE};
use super::*;

/// The widest line of an example's command: with the page's indent it fits 80 columns.
const EXAMPLE_WIDTH: usize = 68;

/// The names of the pages the command line calls for: `shoal`, `shoal-agent`, ...
fn page_names() -> Vec<String> {
    visible(&command())
        .into_iter()
        .map(|c| page_name(c).to_owned())
        .collect()
}

/// The command lines of an example: continuation lines joined, one command a line.
fn command_lines(example: &str) -> Vec<String> {
    example
        .replace("\\\n", " ")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The words of a command line as a shell splits them (double quotes only), up to the first
/// `|`, `>`, `&&` or `;`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    let end = words
        .iter()
        .position(|w| matches!(w.as_str(), "|" | ">" | "&&" | ";"))
        .unwrap_or(words.len());
    words.truncate(end);
    words
}

/// The page a `shoal` command line is for (`shoal-appspec-check`), or why it does not parse.
fn page_of(words: &[String]) -> Result<String, String> {
    let matches = command()
        .try_get_matches_from(words)
        .map_err(|e| e.render().to_string())?;
    let mut name = String::from("shoal");
    let mut matches = &matches;
    while let Some((sub, sub_matches)) = matches.subcommand() {
        name.push('-');
        name.push_str(sub);
        matches = sub_matches;
    }
    Ok(name)
}

#[test]
fn every_visible_command_has_examples_and_an_exit_status() {
    let mut missing = Vec::new();
    for name in page_names() {
        match pages::find(&name) {
            None => missing.push(format!("{name}: no entry")),
            Some(page) => {
                if page.examples.is_empty() {
                    missing.push(format!("{name}: no EXAMPLES"));
                }
                if page.exit_status.is_empty() {
                    missing.push(format!("{name}: no EXIT STATUS"));
                }
                if page.see_also.is_empty() {
                    missing.push(format!("{name}: no SEE ALSO"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "every page needs an entry in PAGES (agent/src/cli/man/pages.rs) with examples, an \
         exit status and references:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_entry_is_the_page_of_a_visible_command() {
    let names: BTreeSet<String> = page_names().into_iter().collect();
    let mut seen = BTreeSet::new();
    for page in pages::PAGES {
        assert!(
            names.contains(page.name),
            "PAGES has {}, which is no visible command; the pages are {names:?}",
            page.name
        );
        assert!(seen.insert(page.name), "PAGES has {} twice", page.name);
    }
}

#[test]
fn exit_statuses_are_the_codes_shoal_uses_in_order() {
    for page in pages::PAGES {
        let codes: Vec<u8> = page.exit_status.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes.first(), Some(&OK), "{}: {codes:?}", page.name);
        assert!(
            codes.windows(2).all(|pair| pair[0] < pair[1]),
            "{}: {codes:?} is not in ascending order",
            page.name
        );
        assert!(
            codes.iter().all(|code| [OK, FAILURE, USAGE].contains(code)),
            "{}: {codes:?}",
            page.name
        );
    }
}

#[test]
fn examples_are_command_lines_of_their_page_that_parse() {
    let mut wrong = Vec::new();
    for page in pages::PAGES {
        let mut own = 0;
        for example in page.examples {
            for line in example.command.lines() {
                if line.chars().count() > EXAMPLE_WIDTH {
                    wrong.push(format!(
                        "{}: wider than {EXAMPLE_WIDTH} columns (go on with ` \\` and a newline): {line}",
                        page.name
                    ));
                }
            }
            for line in command_lines(example.command) {
                let mut words = words(&line);
                if words.first().map(String::as_str) == Some("sudo") {
                    words.remove(0);
                }
                if words.first().map(String::as_str) != Some("shoal") {
                    continue;
                }
                match page_of(&words) {
                    // Its command, or one of its subcommands (the parent pages).
                    Ok(name)
                        if name == page.name || name.starts_with(&format!("{}-", page.name)) =>
                    {
                        own += 1;
                    }
                    Ok(_) => {}
                    Err(e) => wrong.push(format!("{}: `{line}` does not parse: {e}", page.name)),
                }
            }
        }
        if own == 0 {
            wrong.push(format!(
                "{}: no example runs the page's own command",
                page.name
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn an_example_line_is_split_as_a_shell_splits_it() {
    assert_eq!(
        words("sudo shoal halt web --reason \"bad build\" && shoal fleet"),
        ["sudo", "shoal", "halt", "web", "--reason", "bad build"]
    );
    assert_eq!(
        command_lines("shoal deploy --bundle ./app \\\n    --revision app-2\nshoal status"),
        [
            "shoal deploy --bundle ./app      --revision app-2",
            "shoal status"
        ]
    );
    assert_eq!(
        page_of(&words("shoal appspec check appspec.yml")).as_deref(),
        Ok("shoal-appspec-check")
    );
    assert!(page_of(&words("shoal appspec check --no-such-flag a.yml")).is_err());
}

/// Runs `groff -k -man -ww -z` on `page` (`-k`: UTF-8 input through preconv, as man(1) reads
/// a page): its warnings, or `None` when groff is not installed.
fn groff_warnings(page: &Path) -> Option<String> {
    let run = std::process::Command::new("groff")
        .args(["-k", "-man", "-ww", "-z", "-Tutf8"])
        .arg(page)
        .output();
    let output = match run {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run groff: {e}"),
    };
    assert!(
        output.status.success(),
        "groff failed on {}: {output:?}",
        page.display()
    );
    Some(String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn every_page_renders_with_its_sections_and_without_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().display().to_string();
    let Ok(cli) = Cli::try_parse_from(["shoal", "man", "--dir", &path]) else {
        panic!("`shoal man --dir` does not parse");
    };
    assert_eq!(cli.run(), std::process::ExitCode::SUCCESS);

    let written: BTreeSet<String> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected: BTreeSet<String> = page_names().iter().map(|n| format!("{n}.1")).collect();
    assert_eq!(written, expected);
    // Hidden commands get no page, and `help` is no page of its own.
    for absent in ["shoal-man.1", "shoal-hello-server.1", "shoal-help.1"] {
        assert!(!written.contains(absent), "{absent}");
    }

    let command = command();
    let mut groff_missing = false;
    for sub in visible(&command) {
        let name = page_name(sub);
        let file = dir.path().join(format!("{name}.1"));
        let text = std::fs::read_to_string(&file).expect("read the page");
        let mut sections = vec![
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH \"EXIT STATUS\"",
            ".SH EXAMPLES",
            ".SH \"SEE ALSO\"",
        ];
        if sub.get_subcommands().any(|s| !s.is_hide_set()) {
            sections.push(".SH SUBCOMMANDS");
        }
        let page = pages::find(name).expect("an entry in PAGES");
        if !page.files.is_empty() {
            sections.push(".SH FILES");
        }
        if !page.environment.is_empty() {
            sections.push(".SH ENVIRONMENT");
        }
        for section in sections {
            assert_eq!(
                text.matches(&format!("{section}\n")).count(),
                1,
                "{name}.1 should have {section} once:\n{text}"
            );
        }
        let title = format!(".TH {name} 1  \"shoal {}\"", env!("CARGO_PKG_VERSION"));
        assert!(text.contains(&title), "no `{title}` in\n{text}");
        // The roff preamble once, at the top, however many pieces the page was made of.
        let preamble = Roff::new().render();
        assert!(text.starts_with(&preamble), "{text}");
        assert_eq!(text.matches(&preamble).count(), 1, "{text}");

        match groff_warnings(&file) {
            Some(warnings) => assert!(warnings.is_empty(), "{name}.1:\n{warnings}"),
            None => groff_missing = true,
        }
    }
    if groff_missing {
        eprintln!("groff is not installed (package groff-base): the pages' roff was not run");
    }
}

#[test]
fn shoal_1_lists_the_commands_and_not_the_hidden_ones() {
    let mut out = Vec::new();
    write_page(&command(), &mut out).expect("write_page");
    let page = String::from_utf8(out).expect("utf-8");
    assert!(page.contains(".TH shoal 1"), "{page}");
    for listed in ["shoal\\-agent(1)", "shoal\\-deploy(1)", "shoal\\-status(1)"] {
        assert!(page.contains(listed), "no {listed} in\n{page}");
    }
    // The man page itself is for packagers, not a subcommand users look for.
    assert!(!page.contains("shoal\\-man"), "{page}");
    assert!(!page.contains("shoal\\-help"), "{page}");
    assert!(!page.contains("shoal\\-hello\\-server"), "{page}");
}

#[test]
fn a_command_without_an_entry_still_gets_clap_s_sections() {
    let command = clap::Command::new("shoal-unknown").arg(clap::arg!(--flag "A flag."));
    let mut out = Vec::new();
    write_page(&command, &mut out).expect("write_page");
    let page = String::from_utf8(out).expect("utf-8");
    assert!(page.contains(".SH OPTIONS"), "{page}");
    assert!(!page.contains(".SH EXAMPLES"), "{page}");
}
