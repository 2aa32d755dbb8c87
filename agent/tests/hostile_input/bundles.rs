//! Bundles (tar, tar.gz, zip) built from entries that climb out, point out or lie about their
//! size: nothing is written outside the destination, and what must be refused is.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use shoal_agent::bundle::{self, Limits, Owners};
use tar::EntryType;
use zip::write::SimpleFileOptions;

#[derive(Debug, Clone, Copy)]
enum Format {
    Tar,
    TarGz,
    Zip,
}

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>),
    /// Declares (tar) or holds (zip) more bytes than the limits allow.
    Huge,
    Dir,
    Symlink(String),
    /// A tar hard link; zip has none, so it is a plain file there.
    Hardlink(String),
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: Kind,
}

fn entry(name: &str, kind: Kind) -> Entry {
    Entry {
        name: name.to_owned(),
        kind,
    }
}

const LIMITS: Limits = Limits {
    max_total_bytes: 4096,
    max_entries: 32,
};

fn name() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        12 => prop::sample::select(vec!["a", "b", "l", "appspec.yml", "outside"]),
        1 => prop::sample::select(vec!["..", ".", ""]),
    ];
    (
        prop::bool::weighted(0.05),
        prop::collection::vec(part, 1..4),
    )
        .prop_map(|(absolute, parts)| {
            let path = parts.join("/");
            if absolute { format!("/{path}") } else { path }
        })
}

fn link_target() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "..",
            "../outside",
            "../..",
            "/tmp",
            "/",
            ".",
            "a",
            "l",
            "a/..",
            "l/..",
            "l/../..",
            "b/../../outside",
            "appspec.yml",
        ])
        .prop_map(str::to_owned),
        name(),
    ]
}

fn any_entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        6 => (name(), prop::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(n, data)| entry(&n, Kind::File(data))),
        1 => name().prop_map(|n| entry(&n, Kind::Huge)),
        3 => name().prop_map(|n| entry(&n, Kind::Dir)),
        4 => (name(), link_target()).prop_map(|(n, t)| entry(&n, Kind::Symlink(t))),
        2 => (name(), name()).prop_map(|(n, t)| entry(&n, Kind::Hardlink(t))),
    ]
}

/// Known ways out, each a few entries, to start a bundle with.
fn attack() -> impl Strategy<Value = Vec<Entry>> {
    let file = || Kind::File(b"pwned".to_vec());
    let link = |t: &str| Kind::Symlink(t.to_owned());
    prop::sample::select(vec![
        // A link out, then a file through it.
        vec![entry("l", link("../outside")), entry("l/pwned", file())],
        vec![entry("l", link("/tmp")), entry("l/pwned", file())],
        // Each link stays inside on its own; the chain climbs out.
        vec![
            entry("d", Kind::Dir),
            entry("d/up", link("..")),
            entry("d/x", link("up/../..")),
            entry("d/x/pwned", file()),
        ],
        // A link to a directory inside, then a file through the link.
        vec![
            entry("d", Kind::Dir),
            entry("s", link("d")),
            entry("s/pwned", file()),
        ],
        // Hard links out of the tree, and one to a link.
        vec![entry("h", Kind::Hardlink("../outside/x".to_owned()))],
        vec![entry("h", Kind::Hardlink("/etc/hostname".to_owned()))],
        vec![
            entry("l", link("../outside")),
            entry("h", Kind::Hardlink("l".to_owned())),
            entry("h/pwned", file()),
        ],
        // A file replaced by a link, then written through.
        vec![
            entry("a", file()),
            entry("a", link("../outside/a")),
            entry("a", file()),
        ],
        // Names that climb or start at the root.
        vec![entry("../outside/pwned", file())],
        vec![entry("a/../../outside/pwned", file())],
        vec![entry("/tmp/pwned", file())],
        // A single top directory holding the appspec becomes the root: links are judged
        // against it.
        vec![
            entry("top", Kind::Dir),
            entry("top/appspec.yml", file()),
            entry("top/l", link("../top/appspec.yml")),
        ],
        vec![entry("big", Kind::Huge), entry("after", file())],
    ])
}

fn bundle_entries() -> impl Strategy<Value = Vec<Entry>> {
    (
        prop::option::weighted(0.35, attack()),
        prop::collection::vec(any_entry(), 0..8),
    )
        .prop_map(|(attack, rest)| attack.unwrap_or_default().into_iter().chain(rest).collect())
}

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(vec![Format::Tar, Format::TarGz, Format::Zip])
}

/// A tar entry with any name and link name, past the builder's path checks.
fn tar_entry(builder: &mut tar::Builder<Vec<u8>>, e: &Entry) {
    let mut header = tar::Header::new_gnu();
    let name = e.name.as_bytes();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    let (kind, data, size, link): (EntryType, &[u8], u64, Option<&str>) = match &e.kind {
        Kind::File(data) => (EntryType::Regular, data, data.len() as u64, None),
        Kind::Huge => (EntryType::Regular, b"x", 1 << 40, None),
        Kind::Dir => (EntryType::Directory, b"", 0, None),
        Kind::Symlink(target) => (EntryType::Symlink, b"", 0, Some(target)),
        Kind::Hardlink(target) => (EntryType::Link, b"", 0, Some(target)),
    };
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o755);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder.append(&header, data).expect("append");
}

fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        tar_entry(&mut builder, e);
    }
    builder.into_inner().expect("finish the tar")
}

fn zip_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    for e in zip_entries(entries) {
        match &e.kind {
            Kind::File(data) => {
                zip.start_file(&e.name, opts).expect("start a file");
                zip.write_all(data).expect("write a file");
            }
            Kind::Huge => {
                zip.start_file(&e.name, opts).expect("start a file");
                zip.write_all(&vec![0; 2 * LIMITS.max_total_bytes as usize])
                    .expect("write a file");
            }
            Kind::Hardlink(_) => zip.start_file(&e.name, opts).expect("start a file"),
            Kind::Dir => zip.add_directory(&e.name, opts).expect("add a directory"),
            Kind::Symlink(target) => zip
                .add_symlink(&e.name, target, opts)
                .expect("add a symlink"),
        }
    }
    zip.finish().expect("finish the zip").into_inner()
}

/// The entries a zip holds: its writer refuses a name twice (a directory's name ends in `/`),
/// so the first one stays.
fn zip_entries(entries: &[Entry]) -> impl Iterator<Item = &Entry> {
    let mut seen = HashSet::new();
    entries.iter().filter(move |e| {
        let stored = match e.kind {
            Kind::Dir if !e.name.ends_with('/') => format!("{}/", e.name),
            _ => e.name.clone(),
        };
        seen.insert(stored)
    })
}

fn bundle_bytes(format: Format, entries: &[Entry]) -> Vec<u8> {
    match format {
        Format::Tar => tar_bytes(entries),
        Format::TarGz => {
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(&tar_bytes(entries)).expect("compress");
            gz.finish().expect("finish the gzip stream")
        }
        Format::Zip => zip_bytes(entries),
    }
}

/// Whether a name is the bundle root itself (skipped by the unpacker).
fn is_root(name: &str) -> bool {
    !name.starts_with('/') && name.split('/').all(|part| part.is_empty() || part == ".")
}

/// Whether a name or link target starts at `/` or has a `..` component.
fn climbs(path: &str) -> bool {
    path.starts_with('/') || path.split('/').any(|part| part == "..")
}

/// Whether the unpacker must refuse the bundle whatever else it holds: an entry named from the
/// root or with `..`, a tar hard link that climbs, an entry over the size limit. (A symlink
/// may point anywhere: writing through one is what is refused.)
fn must_refuse(format: Format, entries: &[Entry]) -> bool {
    let tar = !matches!(format, Format::Zip);
    let held: Vec<&Entry> = if tar {
        entries.iter().collect()
    } else {
        zip_entries(entries).collect()
    };
    for e in held {
        if is_root(&e.name) {
            // The root entry itself is skipped; in a tar, skipping a huge one skips the rest.
            if tar && matches!(e.kind, Kind::Huge) {
                return false;
            }
            // A zip counts every entry's size before it writes anything.
            if !tar && matches!(e.kind, Kind::Huge) {
                return true;
            }
            continue;
        }
        let refused = climbs(&e.name)
            || match &e.kind {
                Kind::Huge => true,
                // Links may point anywhere; only writing through one is refused.
                Kind::Symlink(_) => false,
                Kind::Hardlink(target) => tar && climbs(target),
                Kind::File(_) | Kind::Dir => false,
            };
        if refused {
            return true;
        }
    }
    false
}

fn names(dir: &Path) -> BTreeSet<OsString> {
    fs::read_dir(dir)
        .expect("read a directory")
        .map(|e| e.expect("a directory entry").file_name())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<OsString> {
    names.iter().map(OsString::from).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn unpacking_never_writes_outside_the_destination(
        format in format(),
        entries in bundle_entries(),
    ) {
        let scratch = tempfile::tempdir().expect("tempdir");
        let tmp = scratch.path();
        let archive = tmp.join("bundle");
        let bytes = bundle_bytes(format, &entries);
        fs::write(&archive, &bytes).expect("write the bundle");
        let root = tmp.join("root");
        let outside = root.join("outside");
        fs::create_dir_all(&outside).expect("sentinel");
        let dest = root.join("dest");

        let result = bundle::unpack(&archive, &dest, &["appspec.yml"], &LIMITS, Owners::Recorded);

        prop_assert_eq!(names(tmp), set(&["bundle", "root"]));
        prop_assert!(fs::read(&archive).expect("read the bundle") == bytes, "the bundle changed");
        prop_assert!(names(&outside).is_empty(), "written outside: {:?}", names(&outside));
        match &result {
            Ok(unpacked) => {
                prop_assert!(!must_refuse(format, &entries), "accepted: {:?}", unpacked);
                prop_assert_eq!(names(&root), set(&["dest", "outside"]));
                prop_assert!(unpacked.bytes <= LIMITS.max_total_bytes);
            }
            Err(error) => {
                prop_assert_eq!(names(&root), set(&["outside"]), "after {}", error);
            }
        }
    }
}
