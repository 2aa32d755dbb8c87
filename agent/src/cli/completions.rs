//! `shoal completions SHELL`: the shell completion script, made from the command-line
//! definition itself so it never drifts from it. The packages install the bash and zsh ones
//! (see `scripts/package.sh`). The man pages are made in `man`.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The shell to complete for (bash and zsh are what the packages install).
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the completion script for `args.shell` to stdout.
pub(super) fn run(args: Args) -> u8 {
    print_with(|out| write_completions(args.shell, out))
}

fn print_with(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            errln!("error: cannot write to stdout: {e}");
            exit::FAILURE
        }
    }
}

fn write_completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    // clap_complete panics on a failed write; render into memory and write that instead.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    out.write_all(&script)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn completions(shell: Shell) -> String {
        let mut out = Vec::new();
        write_completions(shell, &mut out).expect("write_completions");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn bash_and_zsh_scripts_complete_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh] {
            let script = completions(shell);
            for word in [
                "shoal",
                "agent",
                "appspec",
                "deploy",
                "status",
                "completions",
            ] {
                assert!(script.contains(word), "{shell}: no `{word}` in\n{script}");
            }
        }
        assert!(completions(Shell::Bash).contains("complete -F"));
        assert!(completions(Shell::Zsh).starts_with("#compdef shoal"));
    }

    #[test]
    fn the_command_line_takes_a_shell() {
        assert!(Cli::try_parse_from(["shoal", "completions", "zsh"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "completions", "tcsh"]).is_err());
    }
}
