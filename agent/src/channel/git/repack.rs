//! Keeping a mirror's size flat. libgit2 adds a pack for every fetch that brings objects (from
//! a local repository, one holding the tree of every tag again) and has no `gc`, and the
//! agent must not need a `git` binary. So after a fetch that leaves a mirror more than
//! [`MAX_PACKS`] packs, or packs beside the largest that add up to more than half of it,
//! everything reachable from its refs is written into one new pack, the other packs and any
//! loose objects are removed, and loose refs are packed into `packed-refs`. Objects no ref
//! reaches any more (tags deleted upstream) go with them. Between repacks the packs add up to
//! at most 1.5 times the largest.
//!
//! Crash safety: the new pack and its index are written and made durable before any old pack
//! is removed, and an old pack's index goes before its pack, so a crash leaves every object
//! readable (some twice) and at worst a pack without an index, which the next repack removes.
//! Called with the mirror's lock held and no other handle on the mirror open.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

use git2::Repository;

/// A mirror with more packs than this is repacked after a fetch.
pub const MAX_PACKS: usize = 4;

/// Extensions of the files that make up a pack besides `.pack` and `.idx`.
const PACK_EXTRAS: [&str; 5] = ["rev", "keep", "bitmap", "mtimes", "promisor"];

/// What a repack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Repacked {
    /// Packs before.
    pub(super) packs: usize,
    /// Objects in the new pack.
    pub(super) objects: usize,
}

/// Why a repack stopped (the mirror is left readable).
#[derive(Debug, thiserror::Error)]
pub(super) enum RepackError {
    /// libgit2 failed to read the mirror or to write the pack.
    #[error("{0}")]
    Git(#[from] git2::Error),
    /// A file of the mirror cannot be read, written or removed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Repacks the bare repository at `path` if its packs call for it (see the module).
pub(super) fn repack_if_needed(path: &Path) -> Result<Option<Repacked>, RepackError> {
    let pack_dir = path.join("objects").join("pack");
    let before = pack_names(&pack_dir)?;
    let mut sizes = Vec::with_capacity(before.len());
    for name in &before {
        sizes.push(fs::metadata(pack_dir.join(format!("{name}.pack")))?.len());
    }
    if !too_many(&sizes) {
        return Ok(None);
    }
    let (objects, kept) = write_pack(path)?;
    if let Some(name) = &kept {
        for file in [format!("{name}.pack"), format!("{name}.idx")] {
            File::open(pack_dir.join(file))?.sync_all()?;
        }
        File::open(&pack_dir)?.sync_all()?;
    }
    for name in before.iter().filter(|n| Some(*n) != kept.as_ref()) {
        remove_pack(&pack_dir, name)?;
    }
    remove_strays(&pack_dir, kept.as_deref())?;
    remove_loose_objects(&path.join("objects"))?;
    Repository::open_bare(path)?.refdb_compress()?;
    Ok(Some(Repacked {
        packs: before.len(),
        objects,
    }))
}

/// Whether packs of these sizes call for a repack: more than [`MAX_PACKS`], or the others add
/// up to more than half of the largest.
fn too_many(sizes: &[u64]) -> bool {
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let others = sizes.iter().sum::<u64>() - largest;
    sizes.len() > MAX_PACKS || others > largest / 2
}

/// Writes one pack of every object reachable from the refs of the repository at `path`;
/// returns how many objects it holds and its name (`pack-<hex>`), `None` when no object is
/// reachable (no pack is written then).
fn write_pack(path: &Path) -> Result<(usize, Option<String>), RepackError> {
    let repo = Repository::open_bare(path)?;
    let odb = repo.odb()?;
    let mut builder = repo.packbuilder()?;
    let mut commits = Vec::new();
    for reference in repo.references()? {
        let Some(target) = reference?.target() else {
            continue; // symbolic (HEAD): its target is listed too
        };
        builder.insert_recursive(target, None)?;
        if let Ok(commit) = repo.find_object(target, None)?.peel_to_commit() {
            commits.push(commit.id());
        }
    }
    // The history of each: each commit with its tree. A parent the mirror does not have (a
    // local repository sends a tag's commit without its history when no branch holds it)
    // ends that line.
    let mut seen = HashSet::new();
    while let Some(id) = commits.pop() {
        if !seen.insert(id) {
            continue;
        }
        builder.insert_commit(id)?;
        let commit = repo.find_commit(id)?;
        commits.extend(commit.parent_ids().filter(|p| odb.exists(*p)));
    }
    let objects = builder.object_count();
    if objects == 0 {
        return Ok((0, None));
    }
    let mut writer = odb.packwriter()?;
    // A pack ends with the checksum of what precedes it, which names the pack.
    let mut tail = Vec::with_capacity(40);
    let mut failed = None;
    builder.foreach(|chunk| match writer.write_all(chunk) {
        Ok(()) => {
            tail.extend_from_slice(chunk);
            let excess = tail.len().saturating_sub(20);
            tail.drain(..excess);
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    writer.commit()?;
    let name: String = tail.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("pack-{name}");
    let written = ["pack", "idx"].iter().all(|ext| {
        path.join("objects/pack")
            .join(format!("{name}.{ext}"))
            .is_file()
    });
    if !written {
        // Not where it should be: nothing old is removed.
        return Err(
            io::Error::other(format!("the new pack is not at objects/pack/{name}.pack")).into(),
        );
    }
    Ok((objects, Some(name)))
}

/// The packs in `pack_dir` that have an index (`pack-<hex>`), the only ones libgit2 reads.
fn pack_names(pack_dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for file in file_names(pack_dir)? {
        if let Some(stem) = file.strip_suffix(".idx")
            && stem.starts_with("pack-")
        {
            names.insert(stem.to_owned());
        }
    }
    Ok(names)
}

/// Removes a pack: its index first, so it is never an index without its pack.
fn remove_pack(pack_dir: &Path, name: &str) -> io::Result<()> {
    for ext in ["idx", "pack"].into_iter().chain(PACK_EXTRAS) {
        remove_file(&pack_dir.join(format!("{name}.{ext}")))?;
    }
    Ok(())
}

/// Removes what is neither the new pack nor part of an indexed pack: packs whose index went
/// before a crash, and what an interrupted fetch left (libgit2's temporary pack files).
fn remove_strays(pack_dir: &Path, kept: Option<&str>) -> io::Result<()> {
    let indexed = pack_names(pack_dir)?;
    for file in file_names(pack_dir)? {
        let stem = file
            .rsplit_once('.')
            .map_or(file.as_str(), |(stem, _)| stem);
        if Some(stem) != kept && !indexed.contains(stem) {
            remove_file(&pack_dir.join(&file))?;
        }
    }
    Ok(())
}

/// Removes the loose objects (`objects/<2 hex>/`): every one a ref reaches is in the new pack.
fn remove_loose_objects(objects: &Path) -> io::Result<()> {
    for name in file_names(objects)? {
        let fan_out = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if fan_out {
            fs::remove_dir_all(objects.join(name))?;
        }
    }
    Ok(())
}

fn file_names(dir: &Path) -> io::Result<Vec<String>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    read.map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect()
}

fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_packs_or_big_ones_beside_the_largest_call_for_a_repack() {
        assert!(!too_many(&[]));
        assert!(!too_many(&[1000]));
        assert!(!too_many(&[1000, 100, 100, 100]), "a few small fetches");
        assert!(too_many(&[1000, 100, 100, 100, 100]), "more than MAX_PACKS");
        assert!(
            too_many(&[1000, 501]),
            "a fetch that holds half the mirror again"
        );
        assert!(!too_many(&[1000, 500]));
    }
}
