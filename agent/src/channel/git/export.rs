//! Exporting a commit's tree into the release cache: the tree is written as an uncompressed
//! tar under the cache's `tmp/`, then unpacked by the same code as archive bundles, so a git
//! release meets exactly the refusals an archive does (links escaping the tree, limits).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use git2::{Oid, Repository};
use tar::{Builder, EntryType, Header};

use crate::bundle::{self, APPSPEC_NAMES, BundleError, Limits, Owners};
use crate::channel::cache::ReleaseCache;

/// Why an export stopped.
pub(super) enum ExportError {
    /// The tree is refused, as an archive with the same entries would be.
    Refused(BundleError),
    /// Reading the mirror failed.
    Git(git2::Error),
    /// Writing the cache failed.
    Io(io::Error),
}

impl From<git2::Error> for ExportError {
    fn from(e: git2::Error) -> Self {
        Self::Git(e)
    }
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<BundleError> for ExportError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Io { source, .. } => Self::Io(source),
            refused => Self::Refused(refused),
        }
    }
}

/// Writes the tree of `commit` to `dest` (which must not exist) through a temporary tar; the
/// tar is removed whatever happens, and `dest` appears only complete.
pub(super) fn to_cache(
    repo: &Repository,
    commit: &str,
    cache: &ReleaseCache,
    dest: &Path,
) -> Result<(), ExportError> {
    let limits = Limits::default();
    let tar = cache.temp_path("export")?;
    let staged = cache.temp_path("tree")?;
    let result = write_tar(repo, commit, &tar, &limits).and_then(|()| {
        Ok(bundle::unpack(
            &tar,
            &staged,
            &APPSPEC_NAMES,
            &limits,
            Owners::Recorded,
        )?)
    });
    if let Err(e) = fs::remove_file(&tar)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %tar.display(), error = %e, "cannot remove exported tar");
    }
    result?;
    if let Err(e) = fs::rename(&staged, dest) {
        // Another channel of the same repository may have cached the same commit meanwhile.
        fs::remove_dir_all(&staged)?;
        if !dest.is_dir() {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Entries and bytes written so far, against the limits an archive bundle has.
struct Budget<'a> {
    limits: &'a Limits,
    entries: u64,
    bytes: u64,
}

impl Budget<'_> {
    fn take(&mut self, entry: &str, bytes: u64) -> Result<(), BundleError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.entries > self.limits.max_entries {
            return Err(BundleError::TooManyEntries {
                entry: entry.to_owned(),
                limit: self.limits.max_entries,
            });
        }
        if self.bytes > self.limits.max_total_bytes {
            return Err(BundleError::TooLarge {
                entry: entry.to_owned(),
                limit: self.limits.max_total_bytes,
            });
        }
        Ok(())
    }
}

/// Writes the tree of `commit` as a tar at `path`: directories, regular files (0644 or 0755
/// as git records them), symlinks; submodules are skipped with a warning.
fn write_tar(
    repo: &Repository,
    commit: &str,
    path: &Path,
    limits: &Limits,
) -> Result<(), ExportError> {
    let commit = repo.find_commit(Oid::from_str(commit)?)?;
    let mtime = u64::try_from(commit.time().seconds()).unwrap_or(0);
    let mut builder = Builder::new(BufWriter::with_capacity(256 << 10, File::create(path)?));
    let mut budget = Budget {
        limits,
        entries: 0,
        bytes: 0,
    };
    // Depth first with an explicit stack: a hostile tree's depth costs heap, not stack.
    let mut pending = vec![(commit.tree_id(), Vec::<u8>::new())];
    while let Some((tree_id, prefix)) = pending.pop() {
        let tree = repo.find_tree(tree_id)?;
        for entry in tree.iter() {
            let path = child_path(&prefix, entry.name_bytes())?;
            let shown = String::from_utf8_lossy(&path).into_owned();
            let mode = entry.filemode();
            if mode == 0o160000 {
                tracing::warn!(entry = %shown, commit = %commit.id(), "submodule skipped: releases carry their own files only");
                continue;
            }
            let mut header = Header::new_gnu();
            header.set_mtime(mtime);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(0);
            let name = Path::new(OsStr::from_bytes(&path));
            match mode {
                0o040000 => {
                    budget.take(&shown, 0)?;
                    header.set_entry_type(EntryType::Directory);
                    header.set_mode(0o755);
                    builder.append_data(&mut header, name, io::empty())?;
                    pending.push((entry.id(), path.clone()));
                }
                0o100644 | 0o100755 => {
                    let blob = repo.find_blob(entry.id())?;
                    let content = blob.content();
                    budget.take(&shown, content.len() as u64)?;
                    header.set_entry_type(EntryType::Regular);
                    header.set_mode(if mode == 0o100755 { 0o755 } else { 0o644 });
                    header.set_size(content.len() as u64);
                    builder.append_data(&mut header, name, content)?;
                }
                0o120000 => {
                    let blob = repo.find_blob(entry.id())?;
                    let target = blob.content();
                    if target.is_empty() || target.contains(&0) {
                        return Err(corrupt(&shown, "a symlink with an empty or binary target"));
                    }
                    budget.take(&shown, 0)?;
                    header.set_entry_type(EntryType::Symlink);
                    header.set_mode(0o777);
                    builder.append_link(&mut header, name, Path::new(OsStr::from_bytes(target)))?;
                }
                other => {
                    return Err(BundleError::UnknownEntryType {
                        entry: shown,
                        what: format!("git mode {other:o}"),
                    }
                    .into());
                }
            }
        }
    }
    builder.into_inner()?.flush()?;
    Ok(())
}

/// `prefix/name`, refusing names git itself would never write (`..`, `.`, empty, or holding
/// `/` or NUL), which a hand-made tree object can still carry.
fn child_path(prefix: &[u8], name: &[u8]) -> Result<Vec<u8>, ExportError> {
    let mut path = prefix.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    let shown = String::from_utf8_lossy(&path).into_owned();
    if name == b".." {
        return Err(BundleError::ParentDir { entry: shown }.into());
    }
    if name.is_empty() || name == b"." || name.contains(&b'/') || name.contains(&0) {
        return Err(corrupt(&shown, "a tree entry name git never writes"));
    }
    Ok(path)
}

fn corrupt(entry: &str, what: &str) -> ExportError {
    ExportError::Refused(BundleError::UnknownEntryType {
        entry: entry.to_owned(),
        what: what.to_owned(),
    })
}
