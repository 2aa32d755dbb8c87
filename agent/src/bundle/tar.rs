//! Tar and gzip-compressed tar bundles: read entries in order and hand each to the staging
//! directory; an uncompressed tar's file data is left for the writers to read by offset.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entries, Entry, EntryType, Header, PaxExtensions};

use super::error::BundleError;
use super::paths::{display, normalize};
use super::staging::Staging;
use super::write::{ArchiveFile, Data, Meta};

/// The most bytes a GNU long name or long link record may hold: a path of 64 KiB is 16 times
/// Linux's PATH_MAX.
const MAX_LONG_NAME: u64 = 64 << 10;
/// The most bytes a pax extended header (one entry's, or a global one) may hold.
const MAX_PAX: u64 = 1 << 20;

/// Unpacks the tar at `bundle`, gzip-compressed when `gz`, into `staging`.
///
/// An uncompressed tar is read for its headers only, seeking over file data; the writer
/// threads read each file's bytes from the archive by offset, so the data is copied once into
/// memory and once out, as `tar -x` does.
///
/// Entries are read raw: the records that describe the next entry (GNU long names and links,
/// pax headers) are read here, each within a bound, instead of whole by the `tar` crate.
pub(super) fn unpack(bundle: &Path, staging: &mut Staging, gz: bool) -> Result<(), BundleError> {
    let file = File::open(bundle).map_err(BundleError::io("open the bundle", bundle))?;
    if gz {
        let compressed = BufReader::with_capacity(256 << 10, file);
        let decoder = BufReader::with_capacity(256 << 10, MultiGzDecoder::new(compressed));
        let mut archive = Archive::new(decoder);
        let entries = archive.entries().map_err(BundleError::archive(bundle))?;
        add_entries(entries.raw(true), staging, bundle, None)
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
        add_entries(entries.raw(true), staging, bundle, Some(&src))
    }
}

/// Adds every entry of `entries` (read raw) to the staging directory, each with the records
/// that came before it.
fn add_entries<R: Read>(
    entries: Entries<'_, R>,
    staging: &mut Staging,
    bundle: &Path,
    src: Option<&Arc<ArchiveFile>>,
) -> Result<(), BundleError> {
    let mut records = Records::default();
    for entry in entries {
        let mut entry = entry.map_err(BundleError::archive(bundle))?;
        if !records.take(&mut entry, staging, bundle)? {
            add_entry(entry, std::mem::take(&mut records), staging, bundle, src)?;
        }
    }
    if records.any() {
        return Err(corrupt(
            bundle,
            "the archive ends with a long name or pax header that describes no entry".to_owned(),
        ));
    }
    Ok(())
}

/// The records read since the last entry, which describe the next one.
#[derive(Debug, Default)]
struct Records {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Records {
    fn any(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }

    /// Reads `entry` into these records if it is one (`true`); `false` for an entry proper.
    fn take<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        staging: &mut Staging,
        bundle: &Path,
    ) -> Result<bool, BundleError> {
        let header = entry.header();
        let kind = header.entry_type();
        // As the `tar` crate does: a type flag means a record only in a GNU or ustar header.
        if header.as_gnu().is_none() && header.as_ustar().is_none() {
            return Ok(false);
        }
        let (slot, record, limit) = match kind {
            EntryType::GNULongName => (Some(&mut self.long_name), "GNU long name", MAX_LONG_NAME),
            EntryType::GNULongLink => (Some(&mut self.long_link), "GNU long link", MAX_LONG_NAME),
            EntryType::XHeader => (Some(&mut self.pax), "pax header", MAX_PAX),
            // Global pax headers (git archive writes one, with the commit) apply to nothing
            // shoal keeps; they are counted as entries, so there cannot be endless ones.
            EntryType::XGlobalHeader => (None, "global pax header", MAX_PAX),
            _ => return Ok(false),
        };
        let offset = entry.raw_header_position();
        let size = entry.size();
        if size > limit {
            return Err(BundleError::RecordTooLarge {
                record,
                offset,
                size,
                limit,
            });
        }
        let Some(slot) = slot else {
            staging.count_entry(&format!("the {record} at byte {offset}"))?;
            io::copy(entry, &mut io::sink()).map_err(BundleError::archive(bundle))?;
            return Ok(true);
        };
        if slot.is_some() {
            return Err(corrupt(
                bundle,
                format!("two {record}s at byte {offset} describe the same entry"),
            ));
        }
        // At most `limit` bytes: the header said so, and the reader stops at its size.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(BundleError::archive(bundle))?;
        *slot = Some(bytes);
        Ok(true)
    }

    /// The value of pax key `key`, if the pax header has it.
    fn pax(&self, key: &[u8]) -> Option<&[u8]> {
        PaxExtensions::new(self.pax.as_deref()?)
            .filter_map(Result::ok)
            .find(|e| e.key_bytes() == key)
            .map(|e| e.value_bytes())
    }

    /// The entry's path: a GNU long name, else a pax `path`, else its header's.
    fn path(&self, header: &Header) -> Vec<u8> {
        match (&self.long_name, self.pax(b"path")) {
            (Some(name), _) => trim_nul(name).to_vec(),
            (None, Some(path)) => path.to_vec(),
            (None, None) => header.path_bytes().into_owned(),
        }
    }

    /// The entry's link target: a GNU long link, else a pax `linkpath`, else its header's.
    fn link(&self, header: &Header) -> Option<Vec<u8>> {
        match (&self.long_link, self.pax(b"linkpath")) {
            (Some(link), _) => Some(trim_nul(link).to_vec()),
            (None, Some(link)) => Some(link.to_vec()),
            (None, None) => header.link_name_bytes().map(|l| l.into_owned()),
        }
    }

    /// The entry's owner and group, each as a number and a name: pax values, else its
    /// header's. A number that cannot be read is `None`.
    fn owner<'a>(&'a self, header: &'a Header) -> (Recorded<'a>, Recorded<'a>) {
        let number = |key: &[u8], in_header: io::Result<u64>| match self.pax(key) {
            Some(value) => std::str::from_utf8(value).ok()?.parse().ok(),
            None => in_header.ok(),
        };
        let user = self.pax(b"uname").or(header.username_bytes());
        let group = self.pax(b"gname").or(header.groupname_bytes());
        (
            (number(b"uid", header.uid()), user),
            (number(b"gid", header.gid()), group),
        )
    }

    /// The entry's mtime, to the nanosecond when a pax header gives one.
    fn mtime(&self, header: &Header) -> io::Result<SystemTime> {
        match self
            .pax(b"mtime")
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(parse_pax_time)
        {
            Some(t) => Ok(t),
            None => Ok(UNIX_EPOCH + Duration::from_secs(header.mtime()?)),
        }
    }
}

/// An owner or group as an archive records it: a number and a name.
type Recorded<'a> = (Option<u64>, Option<&'a [u8]>);

/// A GNU long name or link without its terminating NUL.
fn trim_nul(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\0").unwrap_or(bytes)
}

fn corrupt(bundle: &Path, why: String) -> BundleError {
    BundleError::Archive {
        path: bundle.to_path_buf(),
        source: io::Error::other(why),
    }
}

/// Adds one entry, described by the `records` before it, to the staging directory. With
/// `src`, the uncompressed archive itself, regular files are left for the writer to read by
/// offset.
fn add_entry<R: Read>(
    mut entry: Entry<'_, R>,
    records: Records,
    staging: &mut Staging,
    bundle: &Path,
    src: Option<&Arc<ArchiveFile>>,
) -> Result<(), BundleError> {
    let kind = entry.header().entry_type();
    let raw = records.path(entry.header());
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
        // Its map of holes follows in headers of its own, which raw reading leaves unread.
        EntryType::GNUSparse => return Err(special("GNU sparse file (made by `tar --sparse`)")),
        EntryType::Regular
        | EntryType::Continuous
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
    let size = entry.size();
    // Raw reading sizes the entry by its tar header; a pax `size` that says otherwise would
    // make another reader see other entries in the same bytes.
    if let Some(pax) = records.pax(b"size")
        && std::str::from_utf8(pax).ok().and_then(|s| s.parse().ok()) != Some(size)
    {
        return Err(BundleError::PaxSize {
            entry: name,
            pax: display(pax),
            header: size,
        });
    }
    // Every entry's data counts against the size limit, skipped or not: a directory that
    // claims gigabytes would otherwise be decompressed for nothing.
    staging.reserve(&name, size)?;
    let Some(rel) = normalize(&raw)? else {
        // The archive's root (`./`): the destination itself.
        return Ok(());
    };
    let mode = entry
        .header()
        .mode()
        .map_err(BundleError::archive(bundle))?;
    let mtime = records
        .mtime(entry.header())
        .map_err(BundleError::archive(bundle))?;
    // Old (v7) archives mark directories only with a trailing slash.
    let old_style_dir = kind == EntryType::Regular && raw.ends_with(b"/") && size == 0;
    let is_file = matches!(kind, EntryType::Regular | EntryType::Continuous) && !old_style_dir;
    let (user, group) = records.owner(entry.header());
    let owner = is_file
        .then(|| staging.recorded_owner(user, group))
        .flatten();
    let meta = Meta {
        mode,
        mtime: Some(mtime),
        owner,
    };
    match kind {
        EntryType::Directory => staging.add_dir(rel, &name, meta),
        _ if old_style_dir => staging.add_dir(rel, &name, meta),
        EntryType::Symlink | EntryType::Link => {
            let Some(target) = records.link(entry.header()) else {
                return Err(corrupt(bundle, format!("link {name} has no target")));
            };
            if kind == EntryType::Symlink {
                staging.add_symlink(rel, &name, &target, Some(mtime))
            } else {
                staging.add_hardlink(rel, &name, &target)
            }
        }
        _ => match src {
            Some(src) => {
                let data = Data::Range {
                    src: Arc::clone(src),
                    offset: entry.raw_file_position(),
                    len: size,
                };
                staging.add_file(rel, &name, meta, data)
            }
            None => staging.add_file_from(rel, &name, meta, size, &mut entry),
        },
    }
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
