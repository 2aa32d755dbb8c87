//! `shoal keygen [--out FILE]`: a new gossip key (base64 of 32 random bytes), to stdout or to a
//! new file made 0600. An existing file is never overwritten: rotating keys is adding a line.

use std::path::PathBuf;

use super::exit;
use crate::coordinate::seal;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Write the key to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> u8 {
    let Some(path) = args.out else {
        return match seal::generate() {
            Ok(key) => {
                outln!("{key}");
                exit::OK
            }
            Err(e) => {
                errln!("error: cannot read random bytes from the OS: {e}");
                exit::FAILURE
            }
        };
    };
    match seal::write_new_key_file(&path) {
        Ok(()) => {
            errln!(
                "wrote a new gossip key to {} (mode 0600); copy it to every host of the mesh",
                path.display()
            );
            exit::OK
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            errln!(
                "error: --out {}: the file exists and is kept; to rotate, put a new key as its first line (`shoal keygen` prints one)",
                path.display()
            );
            exit::USAGE
        }
        Err(e) => {
            errln!("error: cannot write {}: {e}", path.display());
            exit::FAILURE
        }
    }
}
