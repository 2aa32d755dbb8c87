//! Tar and gzip-compressed tar bundles: read entries in order and hand each to the staging
//! directory; an uncompressed tar's file data is left for the writers to read by offset.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entry, EntryType};

use super::error::BundleError;
use super::paths::{display, normalize};
use super::staging::Staging;
use super::write::{ArchiveFile, Data, Meta};

/// Unpacks the tar at `bundle`, gzip-compressed when `gz`, into `staging`.
///
/// An uncompressed tar is read for its headers only, seeking over file data; the writer
/// threads read each file's bytes from the archive by offset, so the data is copied once into
/// memory and once out, as `tar -x` does.
pub(super) fn unpack(bundle: &Path, staging: &mut Staging, gz: bool) -> Result<(), BundleError> {
    let file = File::open(bundle).map_err(BundleError::io("open the bundle", bundle))?;
    if gz {
        let compressed = BufReader::with_capacity(256 << 10, file);
        let decoder = BufReader::with_capacity(256 << 10, MultiGzDecoder::new(compressed));
        let mut archive = Archive::new(decoder);
        let entries = archive.entries().map_err(BundleError::archive(bundle))?;
        for entry in entries {
            let entry = entry.map_err(BundleError::archive(bundle))?;
            add_entry(entry, staging, bundle, None)?;
        }
    } else {
        let src = Arc::new(ArchiveFile {
            file: file
                .try_clone()
                .map_err(BundleError::io("open the bundle", bundle))?,
            path: bundle.to_path_buf(),
        });
        let mut archive = Archive::new(Headers::new(file));
        let entries = archive
            .entries_with_seek()
            .map_err(BundleError::archive(bundle))?;
        for entry in entries {
            let entry = entry.map_err(BundleError::archive(bundle))?;
            add_entry(entry, staging, bundle, Some(&src))?;
        }
    }
    Ok(())
}

/// Adds one entry to the staging directory. With `src`, the uncompressed archive itself,
/// regular files are left for the writer to read by offset.
fn add_entry<R: Read>(
    mut entry: Entry<'_, R>,
    staging: &mut Staging,
    bundle: &Path,
    src: Option<&Arc<ArchiveFile>>,
) -> Result<(), BundleError> {
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
    ) {
        // Metadata records for the entries that follow, not entries themselves.
        return Ok(());
    }
    let raw = entry.path_bytes().into_owned();
    let name = display(&raw);
    staging.count_entry(&name)?;
    let special = |what| BundleError::SpecialFile {
        entry: name.clone(),
        what,
    };
    match kind {
        EntryType::Char => return Err(special("character device")),
        EntryType::Block => return Err(special("block device")),
        EntryType::Fifo => return Err(special("fifo")),
        EntryType::Regular
        | EntryType::Continuous
        | EntryType::GNUSparse
        | EntryType::Directory
        | EntryType::Symlink
        | EntryType::Link => {}
        other => {
            return Err(BundleError::UnknownEntryType {
                entry: name,
                what: format!("{:?} (a tar type flag)", other.as_byte() as char),
            });
        }
    }
    let Some(rel) = normalize(&raw)? else {
        // The archive's root (`./`): the destination itself.
        return Ok(());
    };
    let mode = entry
        .header()
        .mode()
        .map_err(BundleError::archive(bundle))?;
    let mtime = mtime(&mut entry).map_err(BundleError::archive(bundle))?;
    let meta = Meta {
        mode,
        mtime: Some(mtime),
    };
    // Old (v7) archives mark directories only with a trailing slash.
    let old_style_dir = kind == EntryType::Regular && raw.ends_with(b"/") && entry.size() == 0;
    match kind {
        EntryType::Directory => staging.add_dir(rel, &name, meta),
        _ if old_style_dir => staging.add_dir(rel, &name, meta),
        EntryType::Symlink | EntryType::Link => {
            let Some(target) = entry.link_name_bytes().map(|t| t.into_owned()) else {
                return Err(BundleError::Archive {
                    path: bundle.to_path_buf(),
                    source: io::Error::other(format!("link {name} has no target")),
                });
            };
            if kind == EntryType::Symlink {
                staging.add_symlink(rel, &name, &target, Some(mtime))
            } else {
                staging.add_hardlink(rel, &name, &target)
            }
        }
        _ => {
            let size = entry.size();
            staging.reserve(&name, size)?;
            match src {
                Some(src) if kind != EntryType::GNUSparse => {
                    let offset = entry.raw_file_position();
                    let data = Data::Range {
                        src: Arc::clone(src),
                        offset,
                        len: size,
                    };
                    staging.add_file(rel, &name, meta, data)
                }
                _ => staging.add_file_from(rel, &name, meta, size, &mut entry),
            }
        }
    }
}

/// The entry's mtime, to the nanosecond when a pax header gives one.
fn mtime<R: Read>(entry: &mut Entry<'_, R>) -> io::Result<SystemTime> {
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            if ext.key_bytes() == b"mtime"
                && let Some(t) = std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(parse_pax_time)
            {
                return Ok(t);
            }
        }
    }
    Ok(UNIX_EPOCH + Duration::from_secs(entry.header().mtime()?))
}

/// Parses a pax time such as `1700000000.25` or `-12.5`.
fn parse_pax_time(s: &str) -> Option<SystemTime> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    let since = Duration::new(secs, nanos);
    if negative {
        UNIX_EPOCH.checked_sub(since)
    } else {
        UNIX_EPOCH.checked_add(since)
    }
}

/// The archive as the header parser sees it: a small buffer, since file data is skipped, and
/// seeks that stay inside the buffer when they can.
struct Headers {
    inner: BufReader<File>,
    pos: u64,
}

impl Headers {
    fn new(file: File) -> Self {
        Self {
            inner: BufReader::with_capacity(8 << 10, file),
            pos: 0,
        }
    }
}

impl Read for Headers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Headers {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Current(delta) => {
                self.inner.seek_relative(delta)?;
                self.pos = self.pos.checked_add_signed(delta).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")
                })?;
            }
            other => self.pos = self.inner.seek(other)?,
        }
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_parse_with_fractions_and_signs() {
        assert_eq!(
            parse_pax_time("10"),
            Some(UNIX_EPOCH + Duration::from_secs(10))
        );
        assert_eq!(
            parse_pax_time("10.5"),
            Some(UNIX_EPOCH + Duration::from_millis(10_500))
        );
        assert_eq!(
            parse_pax_time("-1.5"),
            UNIX_EPOCH.checked_sub(Duration::from_millis(1500))
        );
        assert_eq!(parse_pax_time("x"), None);
    }
}
