//! Turning `--bundle` into the bytes to upload: a directory becomes a deterministic `.tar.gz`
//! (entries sorted by name, modes kept, owners and times dropped, so the same tree always gives
//! the same sha256); an archive (`.tar`, `.tar.gz`/`.tgz`, `.zip`, told by its content) is
//! uploaded as it is.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use crate::bundle::{BundleKind, detect};

/// The mtime of every entry of a packaged directory (the `tar` crate's deterministic time).
const FIXED_MTIME: u64 = 1_153_704_088;

/// A bundle ready to upload.
#[derive(Debug)]
pub struct Packaged {
    /// The file name in the version directory: `bundle.tar.gz`, `bundle.tar` or `bundle.zip`.
    pub name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Whether a directory was packaged (else an archive is uploaded as is).
    pub packaged: bool,
}

/// Why `--bundle` cannot be packaged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The bundle is neither a directory nor a supported archive.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// A file of the directory is not a regular file, directory or symlink.
    #[error(
        "{} is a {what}; a bundle holds only regular files, directories and symlinks: remove it from --bundle",
        path.display()
    )]
    SpecialFile {
        /// The file.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Reading the bundle failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Packages a directory, or reads an archive as it is.
pub fn package(bundle: &Path) -> Result<Packaged, PackageError> {
    let kind = detect(bundle)?;
    let name = match kind {
        BundleKind::Directory => {
            return Ok(Packaged {
                name: "bundle.tar.gz".to_owned(),
                bytes: tar_gz(bundle)?,
                packaged: true,
            });
        }
        BundleKind::Tar => "bundle.tar",
        BundleKind::TarGz => "bundle.tar.gz",
        BundleKind::Zip => "bundle.zip",
    };
    Ok(Packaged {
        name: name.to_owned(),
        bytes: fs::read(bundle).map_err(io_error(bundle))?,
        packaged: false,
    })
}

/// The directory's tree as a deterministic gzip-compressed tar.
pub fn tar_gz(dir: &Path) -> Result<Vec<u8>, PackageError> {
    let gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(gz);
    append_dir(&mut builder, dir, Path::new(""))?;
    let gz = builder.into_inner().map_err(io_error(dir))?;
    gz.finish().map_err(io_error(dir))
}

fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    relative: &Path,
) -> Result<(), PackageError> {
    let dir = root.join(relative);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(io_error(&dir))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_error(&dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let entry = relative.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_error(&path))?;
        let kind = meta.file_type();
        let mut header = Header::new_gnu();
        header.set_mode(meta.permissions().mode() & 0o7777);
        header.set_mtime(FIXED_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        let appended = if kind.is_dir() {
            header.set_entry_type(EntryType::Directory);
            builder
                .append_data(&mut header, &entry, io::empty())
                .map_err(io_error(&path))?;
            append_dir(builder, root, &entry)?;
            Ok(())
        } else if kind.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(&path).map_err(io_error(&path))?;
            builder.append_link(&mut header, &entry, target)
        } else if kind.is_file() {
            header.set_entry_type(EntryType::Regular);
            header.set_size(meta.size());
            let file = File::open(&path).map_err(io_error(&path))?;
            builder.append_data(&mut header, &entry, file)
        } else {
            return Err(PackageError::SpecialFile {
                path,
                what: special_kind(&meta),
            });
        };
        appended.map_err(io_error(&path))?;
    }
    Ok(())
}

fn special_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "named pipe"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device file"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("scripts")).expect("mkdir");
        fs::write(root.join("appspec.yml"), "version: 0.0\nos: linux\n").expect("write");
        fs::write(root.join("scripts/start.sh"), "#!/bin/sh\n").expect("write");
        fs::set_permissions(
            root.join("scripts/start.sh"),
            fs::Permissions::from_mode(0o750),
        )
        .expect("chmod");
        symlink("scripts/start.sh", root.join("start")).expect("symlink");
    }

    #[test]
    fn the_same_tree_packs_to_the_same_bytes_with_modes_kept() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        tree(a.path());
        tree(b.path());
        let (pa, pb) = (tar_gz(a.path()).expect("a"), tar_gz(b.path()).expect("b"));
        assert_eq!(pa, pb);

        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(pa.as_slice()));
        let entries: Vec<(String, u32, EntryType)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("path").display().to_string(),
                    h.mode().expect("mode"),
                    h.entry_type(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["appspec.yml", "scripts", "scripts/start.sh", "start"]
        );
        assert_eq!(entries[2].1, 0o750);
        assert_eq!(entries[3].2, EntryType::Symlink);
    }

    #[test]
    fn a_named_pipe_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let err = tar_gz(dir.path()).expect_err("fifo").to_string();
        assert!(err.contains("pipe is a named pipe"), "{err}");
    }
}
