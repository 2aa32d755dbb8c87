//! Zip bundles: check entry count and declared sizes from the central directory before writing
//! anything, then unpack entries in order, telling symlinks and special files apart by their
//! Unix mode.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zip::extra_fields::ExtraField;
use zip::read::ZipFile;
use zip::{System, ZipArchive};

use super::error::BundleError;
use super::paths::{display, normalize};
use super::staging::Staging;
use super::write::Meta;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Longest symlink target read from an entry (Linux `PATH_MAX`).
const MAX_LINK: u64 = 4096;

/// Unpacks the zip at `bundle` into `staging`.
pub(super) fn unpack(bundle: &Path, staging: &mut Staging) -> Result<(), BundleError> {
    let zip_err = |e: zip::result::ZipError| BundleError::archive(bundle)(io::Error::from(e));
    let file = File::open(bundle).map_err(BundleError::io("open the bundle", bundle))?;
    // A small buffer: reading each entry starts with a seek, which empties it.
    let mut archive = ZipArchive::new(BufReader::with_capacity(16 << 10, file)).map_err(zip_err)?;

    // Refuse before writing anything: the central directory lists every entry and its size.
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(zip_err)?;
        let name = display(entry.name().map_err(zip_err)?.as_bytes());
        staging.count_entry(&name)?;
        staging.reserve(&name, entry.size())?;
    }

    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(zip_err)?;
        let raw = entry.name().map_err(zip_err)?.into_owned().into_bytes();
        let name = display(&raw);
        let kind = kind(&entry, &name)?;
        let Some(rel) = normalize(&raw)? else {
            continue;
        };
        let mtime = mtime(&entry);
        let declared = entry.size();
        match kind {
            Kind::Dir => {
                let mode = unix_mode(&entry).map_or(0o755, |m| m & 0o7777);
                let owner = None;
                staging.add_dir(rel, &name, Meta { mode, mtime, owner })?;
            }
            Kind::Symlink => {
                let mut target = Vec::new();
                (&mut entry)
                    .take(MAX_LINK)
                    .read_to_end(&mut target)
                    .map_err(BundleError::archive(bundle))?;
                staging.add_symlink(rel, &name, &target, mtime)?;
            }
            Kind::File => {
                let mode = unix_mode(&entry).map_or(0o644, |m| m & 0o7777);
                // Like the CodeDeploy agent's `unzip`, no owners from a zip.
                let meta = Meta {
                    mode,
                    mtime,
                    owner: None,
                };
                staging.add_file_from(rel, &name, meta, declared, &mut entry)?;
            }
        }
    }
    Ok(())
}

enum Kind {
    Dir,
    File,
    Symlink,
}

/// What an entry is, from its Unix mode when the archiver recorded one, else from its name.
fn kind<R: Read>(entry: &ZipFile<'_, R>, name: &str) -> Result<Kind, BundleError> {
    let special = |what| BundleError::SpecialFile {
        entry: name.to_owned(),
        what,
    };
    match unix_mode(entry).map(|m| m & S_IFMT) {
        Some(S_IFDIR) => Ok(Kind::Dir),
        Some(S_IFLNK) => Ok(Kind::Symlink),
        Some(0o020_000) => Err(special("character device")),
        Some(0o060_000) => Err(special("block device")),
        Some(0o010_000) => Err(special("fifo")),
        Some(0o140_000) => Err(special("socket")),
        Some(S_IFREG | 0) | None if entry.is_dir() => Ok(Kind::Dir),
        Some(S_IFREG | 0) | None => Ok(Kind::File),
        Some(other) => Err(BundleError::UnknownEntryType {
            entry: name.to_owned(),
            what: format!("{other:#o} (a unix file type)"),
        }),
    }
}

/// The entry's Unix mode. For archives made on Unix it is read from the external attributes
/// directly, because the zip crate clears setuid, setgid and sticky, which `tar -xp` (and so a
/// tar bundle) keeps.
fn unix_mode<R: Read>(entry: &ZipFile<'_, R>) -> Option<u32> {
    let raw = entry.external_attributes() >> 16;
    if entry.system() == System::Unix && raw != 0 {
        Some(raw)
    } else {
        entry.unix_mode()
    }
}

/// The entry's mtime: the extended timestamp field when present (UTC seconds), else the DOS
/// date and time, which carry no zone and are read as UTC.
fn mtime<R: Read>(entry: &ZipFile<'_, R>) -> Option<SystemTime> {
    let extended = entry.extra_data_fields().find_map(|field| match field {
        ExtraField::ExtendedTimestamp(ts) => ts.mod_time(),
        _ => None,
    });
    if let Some(secs) = extended {
        return Some(UNIX_EPOCH + Duration::from_secs(u64::from(secs)));
    }
    let dos = entry.last_modified()?;
    let days = days_from_civil(i64::from(dos.year()), dos.month().into(), dos.day().into());
    let secs = days * 86_400
        + i64::from(dos.hour()) * 3600
        + i64::from(dos.minute()) * 60
        + i64::from(dos.second());
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1980, 1, 1), 3652);
    }
}
