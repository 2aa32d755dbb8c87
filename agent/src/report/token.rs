//! The admin token that guards the status endpoint's steering calls (halt, resume, promote)
//! over TCP: made on first start as 32 random bytes in hex, in a file only its owner may read;
//! refused when anyone else could read it. Automation reads it with [`read_token`];
//! `shoal halt`/`resume`/`promote` need none (they use the control socket).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// The token kept in `path`: read (and trimmed) when the file exists, else made, written with
/// mode 0600 (its missing parent directories 0700) and synced to disk. A file that group or
/// others may read or write, or that is empty, is an error that says how to fix it.
pub fn ensure_token(path: &Path) -> io::Result<String> {
    match read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    match create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(path),
        other => other,
    }
}

/// The token kept in `path`, read (and trimmed) with the checks of [`ensure_token`]; never made.
/// An error from the system (not found, permission denied) keeps its `raw_os_error`.
pub fn read_token(path: &Path) -> io::Result<String> {
    read(path)
}

fn read(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the token file {} is not a regular file; point status.token_file at a file",
                path.display()
            ),
        ));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the token file {} can be read or written by group or others (mode {mode:04o}); \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the token file {}: {e}", path.display()),
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the token file {} is empty; remove it and the agent makes a new one",
                path.display()
            ),
        ));
    }
    Ok(token.to_owned())
}

/// Writes a new token beside `path`, syncs it, then links it into place, so `path` appears
/// whole or not at all (and a token another process made first wins).
fn create(path: &Path) -> io::Result<String> {
    let context = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| context("create the directory of the token file", e))?;
    let token = random_hex().map_err(|e| context("make a random token for", e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(format!("{token}\n").as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
        Err(e) => return Err(context("write the token file", e)),
        Ok(()) => {}
    }
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| context("sync the directory of the token file", e))?;
    Ok(token)
}

fn random_hex() -> io::Result<String> {
    let mut bytes = [0; TOKEN_BYTES];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_missing_token_is_made_private_with_private_parents() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("etc/shoal/admin.token");
        let token = ensure_token(&path).expect("ensure_token");
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&tmp.path().join("etc/shoal")), 0o700);
        assert_eq!(mode(&tmp.path().join("etc")), 0o700);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read_to_string"),
            format!("{token}\n")
        );
    }

    #[test]
    fn an_existing_token_is_read_and_trimmed_and_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("admin.token");
        let first = ensure_token(&path).expect("ensure_token");
        assert_eq!(ensure_token(&path).expect("ensure_token"), first);
        std::fs::write(&path, "  my-token \n").expect("write");
        assert_eq!(ensure_token(&path).expect("ensure_token"), "my-token");
    }

    #[test]
    fn two_tokens_differ() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = ensure_token(&tmp.path().join("a")).expect("ensure_token");
        let b = ensure_token(&tmp.path().join("b")).expect("ensure_token");
        assert_ne!(a, b);
    }

    #[test]
    fn a_token_others_can_read_is_refused_with_the_fix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("admin.token");
        ensure_token(&path).expect("ensure_token");
        for loose in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose))
                .expect("set_permissions");
            let error = ensure_token(&path).expect_err("an error");
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
            let message = error.to_string();
            assert!(message.contains(&format!("mode {loose:04o}")), "{message}");
            assert!(
                message.contains(&format!("chmod 600 {}", path.display())),
                "{message}"
            );
        }
    }

    #[test]
    fn an_empty_token_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("admin.token");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create");
        let error = ensure_token(&path).expect_err("an error");
        assert!(error.to_string().contains("is empty"), "{error}");
    }
}
