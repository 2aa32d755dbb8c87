//! The hidden `shoal man [--dir DIR]`: the man pages, made from the command-line definition
//! itself so they never drift from it. The packages install them (see `scripts/package.sh`).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Write every page (shoal.1, shoal-agent.1, ...) into this directory instead of printing
    /// shoal.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the man page `shoal(1)`, in roff, to stdout; or writes one page per subcommand.
pub(super) fn run(args: Args) -> u8 {
    let Some(dir) = args.dir else {
        let mut out = io::stdout().lock();
        return match write_man(&mut out).and_then(|()| out.flush()) {
            Ok(()) => exit::OK,
            Err(e) => {
                errln!("error: cannot write to stdout: {e}");
                exit::FAILURE
            }
        };
    };
    match clap_mangen::generate_to(Cli::command(), &dir) {
        Ok(()) => exit::OK,
        Err(e) => {
            errln!(
                "error: cannot write the man pages into {}: {e}",
                dir.display()
            );
            exit::FAILURE
        }
    }
}

fn write_man(out: &mut dyn Write) -> io::Result<()> {
    // As `generate_to` makes it: `help` is no page of its own.
    clap_mangen::Man::new(Cli::command().disable_help_subcommand(true)).render(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn the_man_page_is_roff_for_shoal_1() {
        let mut out = Vec::new();
        write_man(&mut out).expect("write_man");
        let page = String::from_utf8(out).expect("utf-8");
        assert!(page.contains(".TH shoal 1"), "{page}");
        assert!(page.contains(".SH NAME"), "{page}");
        assert!(page.contains("agent"), "{page}");
        // The man page itself is for packagers, not a subcommand users look for.
        assert!(!page.contains("shoal\\-man"), "{page}");
        assert!(!page.contains("shoal\\-help"), "{page}");
    }

    #[test]
    fn every_subcommand_gets_a_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().display().to_string();
        let Ok(cli) = Cli::try_parse_from(["shoal", "man", "--dir", &path]) else {
            panic!("`shoal man --dir` does not parse");
        };
        assert_eq!(cli.run(), std::process::ExitCode::SUCCESS);
        for page in [
            "shoal.1",
            "shoal-agent.1",
            "shoal-appspec-check.1",
            "shoal-completions.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).expect(page);
            assert!(text.contains(".SH NAME"), "{page}: {text}");
        }
        assert!(!dir.path().join("shoal-man.1").exists());
    }

    #[test]
    fn the_command_line_takes_man() {
        assert!(Cli::try_parse_from(["shoal", "man"]).is_ok());
    }
}
