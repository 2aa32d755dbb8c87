//! Tar and gzip-compressed tar bundles: read entries in order and hand each to the staging
//! directory.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entry, EntryType};

use super::error::BundleError;
use super::paths::{display, normalize};
use super::staging::Staging;
use super::write::Meta;

/// Unpacks the tar at `bundle`, gzip-compressed when `gz`, into `staging`.
pub(super) fn unpack(bundle: &Path, staging: &mut Staging, gz: bool) -> Result<(), BundleError> {
    let file = File::open(bundle).map_err(BundleError::io("open the bundle", bundle))?;
    let file = BufReader::with_capacity(256 << 10, file);
    if gz {
        let decoder = BufReader::with_capacity(256 << 10, MultiGzDecoder::new(file));
        add_entries(Archive::new(decoder), staging, bundle)
    } else {
        add_entries(Archive::new(file), staging, bundle)
    }
}

fn add_entries<R: Read>(
    mut archive: Archive<R>,
    staging: &mut Staging,
    bundle: &Path,
) -> Result<(), BundleError> {
    for entry in archive.entries().map_err(BundleError::archive(bundle))? {
        let entry = entry.map_err(BundleError::archive(bundle))?;
        add_entry(entry, staging, bundle)?;
    }
    Ok(())
}

/// Adds one entry to the staging directory.
fn add_entry<R: Read>(
    mut entry: Entry<'_, R>,
    staging: &mut Staging,
    bundle: &Path,
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
            staging.add_file_from(rel, &name, meta, size, &mut entry)
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
