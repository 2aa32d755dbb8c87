//! The one LIST of a store channel: the names of the version directories under the prefix, and
//! the names that had to be skipped because object_store cannot read them (`prefix//x`, `.` or
//! `..` segments, control characters, file names that are not UTF-8). A skipped name never
//! fails the listing: the valid releases beside it still install and publish.

use std::path::Path;

use object_store::ObjectStore;
use object_store::path::PathPart;
use shoal_shared::text::{printable, printable_bytes};

use super::tolerant::Unreadable;
use super::{Scheme, StoreError, StoreLocation};

/// What one listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The directory names directly under the prefix.
    pub dirs: Vec<String>,
    /// Names under the prefix that were skipped, escaped for logs and status (`\u{1b}`).
    pub unreadable: Vec<String>,
}

/// Lists the directories under `location`'s prefix. A `file://` store is read with
/// `read_dir` (object_store's local listing fails as a whole on one unreadable name); a remote
/// store through object_store, whose LIST replies the store's [`TolerantConnector`]
/// (see [`super::tolerant`]) has cleaned, leaving what it took out in `unreadable`.
///
/// [`TolerantConnector`]: super::tolerant::TolerantConnector
pub async fn version_dirs(
    store: &dyn ObjectStore,
    location: &StoreLocation,
    unreadable: &Unreadable,
) -> Result<Listing, StoreError> {
    if location.scheme() == Scheme::File
        && let Some(dir) = location.local_dir()
    {
        let task_dir = dir.clone();
        return tokio::task::spawn_blocking(move || local_dirs(&task_dir))
            .await
            .map_err(|e| StoreError::io("list", &dir)(std::io::Error::other(e)))?;
    }
    let prefix = location.prefix();
    unreadable.take();
    let listing = store
        .list_with_delimiter((!prefix.as_ref().is_empty()).then_some(prefix))
        .await
        .map_err(|source| StoreError::List {
            url: location.url().to_owned(),
            source,
        })?;
    Ok(Listing {
        dirs: listing
            .common_prefixes
            .iter()
            .filter_map(|dir| dir.filename().map(str::to_owned))
            .collect(),
        unreadable: unreadable
            .take()
            .iter()
            .map(|name| printable(name).into_owned())
            .collect(),
    })
}

/// The directories of a local store (following symbolic links, as object_store does); a
/// directory that does not exist yet lists as empty.
fn local_dirs(dir: &Path) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(StoreError::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let readable = name.to_str().filter(|name| PathPart::parse(name).is_ok());
        match readable {
            Some(name) => {
                if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                    listing.dirs.push(name.to_owned());
                }
            }
            None => listing
                .unreadable
                .push(printable_bytes(name.as_encoded_bytes())),
        }
    }
    listing.dirs.sort();
    listing.unreadable.sort();
    Ok(listing)
}
