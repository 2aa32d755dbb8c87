//! The hidden `shoal man [--dir DIR]`: the man pages, shoal(1) and one page per visible
//! subcommand (shoal-agent(1), shoal-appspec-check(1), ...). NAME, SYNOPSIS, DESCRIPTION,
//! OPTIONS and SUBCOMMANDS come from the command-line definition, as clap_mangen renders them,
//! so they never drift from it; EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO come
//! from the table in [`pages`]. The packages install the pages (see `scripts/package.sh`).

mod pages;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use super::{Cli, exit};
use pages::Page;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Write every page (shoal.1, shoal-agent.1, ...) into this directory instead of printing
    /// shoal.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the man page `shoal(1)`, in roff, to stdout; or writes one page per command.
pub(super) fn run(args: Args) -> u8 {
    let Some(dir) = args.dir else {
        let mut out = io::stdout().lock();
        return match write_page(&command(), &mut out).and_then(|()| out.flush()) {
            Ok(()) => exit::OK,
            Err(e) => {
                errln!("error: cannot write to stdout: {e}");
                exit::FAILURE
            }
        };
    };
    match write_pages(&dir) {
        Ok(_) => exit::OK,
        Err(e) => {
            errln!(
                "error: cannot write the man pages into {}: {e}",
                dir.display()
            );
            exit::FAILURE
        }
    }
}

/// The command line as the pages show it: built (so each subcommand knows its page name), and
/// without `help`, which is no page of its own.
fn command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// `command` and every subcommand under it that is not hidden: the commands that get a page.
fn visible(command: &clap::Command) -> Vec<&clap::Command> {
    let mut all = vec![command];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.extend(visible(sub));
    }
    all
}

/// The page of `command`: `shoal`, `shoal-agent`, `shoal-appspec-check`, ...
fn page_name(command: &clap::Command) -> &str {
    command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
}

/// Writes every page into `dir` as `NAME.1`; the files written.
fn write_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let command = command();
    let mut written = Vec::new();
    for page in visible(&command) {
        let path = dir.join(format!("{}.1", page_name(page)));
        let mut text = Vec::new();
        write_page(page, &mut text)?;
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the page of `command` (a built command, or a subcommand of one): clap_mangen's
/// sections, then the ones [`pages::PAGES`] holds for it (none when it holds no entry).
fn write_page(command: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    // Every page's footer names shoal and its version (clap_mangen gives a subcommand's page
    // the subcommand's bare name).
    let man = Man::new(command.clone()).source(format!("shoal {}", env!("CARGO_PKG_VERSION")));
    let extra = pages::find(page_name(command));
    let mut page = Sections::default();
    page.add(|w| man.render_title(w))?;
    page.roff(&layout())?;
    page.add(|w| man.render_name_section(w))?;
    page.add(|w| man.render_synopsis_section(w))?;
    page.add(|w| man.render_description_section(w))?;
    if let Some(extra) = extra {
        page.roff(&description(extra))?;
    }
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        page.add(|w| man.render_options_section(w))?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        page.add(|w| man.render_subcommands_section(w))?;
    }
    if command.get_after_long_help().is_some() || command.get_after_help().is_some() {
        page.add(|w| man.render_extra_section(w))?;
    }
    if let Some(extra) = extra {
        page.roff(&sections(extra))?;
    }
    out.write_all(&page.text)
}

/// A page put together from separately rendered pieces. Each piece starts with the roff
/// crate's preamble (the string that makes apostrophes print as apostrophes); the page keeps
/// the first one only.
#[derive(Default)]
struct Sections {
    text: Vec<u8>,
}

impl Sections {
    fn add(&mut self, render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let mut piece = Vec::new();
        render(&mut piece)?;
        let preamble = Roff::new().render();
        let body = match piece.strip_prefix(preamble.as_bytes()) {
            Some(body) if !self.text.is_empty() => body,
            _ => &piece,
        };
        self.text.extend_from_slice(body);
        Ok(())
    }

    fn roff(&mut self, roff: &Roff) -> io::Result<()> {
        self.add(|w| roff.to_writer(w))
    }
}

/// Lines set flush left, and no word broken across lines: paths, options and command names
/// stay whole, as man pages made by other tools (asciidoctor, pandoc) do it.
fn layout() -> Roff {
    let mut roff = Roff::new();
    roff.control("ad", ["l"]).control("nh", []);
    roff
}

/// The paragraphs the page adds to DESCRIPTION, after the command's own help.
fn description(page: &Page) -> Roff {
    let mut roff = Roff::new();
    for paragraph in page.description {
        roff.control("PP", []).text([roman(*paragraph)]);
    }
    roff
}

/// EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO, in the order man-pages(7) gives;
/// a section with nothing in it is left out.
fn sections(page: &Page) -> Roff {
    let mut roff = Roff::new();
    if !page.exit_status.is_empty() {
        roff.control("SH", ["EXIT STATUS"]);
        for (code, meaning) in page.exit_status {
            roff.control("TP", [])
                .text([bold(code.to_string())])
                .text([roman(*meaning)]);
        }
    }
    if !page.environment.is_empty() {
        roff.control("SH", ["ENVIRONMENT"]);
        for entry in page.environment {
            roff.control("TP", [])
                .text([bold(entry.name)])
                .text([roman(entry.text)]);
        }
    }
    if !page.files.is_empty() {
        roff.control("SH", ["FILES"]);
        for entry in page.files {
            roff.control("TP", [])
                .text([italic(entry.name)])
                .text([roman(entry.text)]);
        }
    }
    if !page.examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for example in page.examples {
            // Command lines are not filled: they stay as written, continuation lines included.
            roff.control("PP", [])
                .text([roman(example.what)])
                .control("RS", ["4"])
                .control("nf", [])
                .text([roman(example.command)])
                .control("fi", [])
                .control("RE", []);
        }
    }
    if !page.see_also.is_empty() {
        roff.control("SH", ["SEE ALSO"]);
        roff.text(references(page.see_also));
    }
    roff
}

/// `shoal-status(1), systemctl(1)` as man pages write references: the name in bold.
fn references(pages: &[&str]) -> Vec<Inline> {
    let mut line = Vec::new();
    for (i, reference) in pages.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        match reference.split_once('(') {
            Some((name, section)) => {
                line.push(bold(name));
                line.push(roman(format!("({section}")));
            }
            None => line.push(bold(*reference)),
        }
    }
    line
}

#[cfg(test)]
mod tests;
