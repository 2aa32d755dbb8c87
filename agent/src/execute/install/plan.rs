//! The Install step's plan: which directories to create and which files to copy where, decided
//! before anything is touched, with CodeDeploy's rules for sources, destinations, collisions and
//! `file_exists_behavior`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use shoal_shared::appspec::{FileExistsBehavior, FileMapping};

use super::error::InstallError;
use super::held::Held;
use crate::bundle;

/// One step of an install, in the shape of the CodeDeploy agent's `install.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// Create a directory that does not exist yet.
    Mkdir {
        /// The directory to create.
        directory: PathBuf,
    },
    /// Copy a file or symlink from the archive.
    Copy {
        /// The file in the deployment archive.
        source: PathBuf,
        /// Where it goes.
        destination: PathBuf,
    },
}

impl Instruction {
    /// Its `install.json` entry (a path that is not UTF-8 is shown with U+FFFD).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Mkdir { directory } => {
                serde_json::json!({"type": "mkdir", "directory": directory.display().to_string()})
            }
            Self::Copy {
                source,
                destination,
            } => serde_json::json!({
                "type": "copy",
                "source": source.display().to_string(),
                "destination": destination.display().to_string(),
            }),
        }
    }
}

/// What the Install step will do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Steps in order: every directory before anything inside it.
    pub instructions: Vec<Instruction>,
    /// Paths left alone because they exist and the behaviour is RETAIN.
    pub retained: Vec<PathBuf>,
}

impl Plan {
    /// The files it copies to, and the directories it creates.
    pub(super) fn made(&self) -> (HashSet<&Path>, HashSet<&Path>) {
        let mut copies = HashSet::new();
        let mut mkdirs = HashSet::new();
        for instruction in &self.instructions {
            match instruction {
                Instruction::Copy { destination, .. } => copies.insert(destination.as_path()),
                Instruction::Mkdir { directory } => mkdirs.insert(directory.as_path()),
            };
        }
        (copies, mkdirs)
    }

    /// The paths this install creates or overwrites (what permissions may apply to).
    pub fn installed(&self) -> impl Iterator<Item = &Path> {
        self.instructions.iter().map(|i| match i {
            Instruction::Mkdir { directory } => directory.as_path(),
            Instruction::Copy { destination, .. } => destination.as_path(),
        })
    }
}

/// What a planned target will be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Directory,
    File,
}

struct Planner<'a> {
    archive: &'a Path,
    behavior: FileExistsBehavior,
    plan: Plan,
    targets: HashMap<PathBuf, (Target, PathBuf)>,
    /// Directories this install creates: nothing inside them exists yet, so no need to look.
    fresh: HashSet<PathBuf>,
    /// What the previous install left held back: as good as removed.
    held: &'a Held,
}

/// Plans the copies of `files` from `archive`, after the previous install was cleaned up
/// (what it `held` counts as removed).
pub(super) fn plan(
    archive: &Path,
    files: &[FileMapping],
    behavior: FileExistsBehavior,
    held: &Held,
) -> Result<Plan, InstallError> {
    let mut planner = Planner {
        archive,
        behavior,
        plan: Plan::default(),
        targets: HashMap::new(),
        fresh: HashSet::new(),
        held,
    };
    for mapping in files {
        planner.mapping(mapping)?;
    }
    Ok(planner.plan)
}

impl Planner<'_> {
    /// What is on disk at `path` now, without asking the disk inside a directory we create.
    fn on_disk(&self, path: &Path) -> Option<fs::Metadata> {
        if self.held.contains(path)
            || path
                .parent()
                .is_some_and(|parent| self.fresh.contains(parent))
        {
            return None;
        }
        fs::symlink_metadata(path).ok()
    }

    fn mapping(&mut self, mapping: &FileMapping) -> Result<(), InstallError> {
        let relative = bundle_relative(&mapping.source).ok_or_else(|| InstallError::Source {
            source_path: mapping.source.clone(),
            why: "it leaves the bundle (`..`)".to_owned(),
        })?;
        // A link named as the source is installed as a link; links on the way to it are
        // followed only inside the bundle.
        let source =
            bundle::inside(self.archive, &relative, false).map_err(|why| InstallError::Source {
                source_path: mapping.source.clone(),
                why: why.to_string(),
            })?;
        let meta = fs::symlink_metadata(&source).map_err(|_| InstallError::Source {
            source_path: mapping.source.clone(),
            why: "no such file or directory in the bundle".to_owned(),
        })?;
        let destination = PathBuf::from(&mapping.destination);
        if destination.components().any(|c| c == Component::ParentDir) {
            return Err(InstallError::Destination {
                destination: mapping.destination.clone(),
                why: "`..` is not allowed in a destination".to_owned(),
            });
        }
        if !destination.is_absolute() {
            return Err(InstallError::Destination {
                destination: mapping.destination.clone(),
                why: "destinations must be absolute directories such as /srv/app".to_owned(),
            });
        }
        self.directory_and_ancestors(&destination)?;
        if meta.is_dir() {
            self.tree(&source, &destination)
        } else {
            let name = source.file_name().ok_or_else(|| InstallError::Source {
                source_path: mapping.source.clone(),
                why: "it has no file name".to_owned(),
            })?;
            self.file(&source, &destination.join(name))
        }
    }

    /// Copies the contents of directory `from` into `to`, depth first, sorted for a stable order.
    fn tree(&mut self, from: &Path, to: &Path) -> Result<(), InstallError> {
        let mut entries: Vec<_> = fs::read_dir(from)
            .and_then(|dir| dir.collect::<Result<Vec<_>, _>>())
            .map_err(|e| InstallError::io("read", from, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let source = entry.path();
            let destination = to.join(entry.file_name());
            let kind = entry
                .file_type()
                .map_err(|e| InstallError::io("inspect", &source, e))?;
            if kind.is_dir() {
                self.directory(&destination)?;
                self.tree(&source, &destination)?;
            } else {
                self.file(&source, &destination)?;
            }
        }
        Ok(())
    }

    fn directory_and_ancestors(&mut self, dir: &Path) -> Result<(), InstallError> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(path) = at {
            if self.targets.contains_key(path) || self.on_disk(path).is_some() {
                break;
            }
            missing.push(path);
            at = path.parent();
        }
        for path in missing.into_iter().rev() {
            self.directory(path)?;
        }
        self.directory(dir)
    }

    fn directory(&mut self, dir: &Path) -> Result<(), InstallError> {
        if let Some((kind, source)) = self.targets.get(dir) {
            return match kind {
                Target::Directory => Ok(()),
                Target::File => Err(InstallError::Collision {
                    destination: dir.to_owned(),
                    first: source.clone(),
                    second: "a directory of the bundle".into(),
                }),
            };
        }
        match self.on_disk(dir) {
            Some(meta) if meta.is_dir() => {}
            Some(_) => {
                return Err(InstallError::Destination {
                    destination: dir.display().to_string(),
                    why: "a file is in the way of a directory the bundle needs".to_owned(),
                });
            }
            None => {
                self.plan.instructions.push(Instruction::Mkdir {
                    directory: dir.to_owned(),
                });
                self.fresh.insert(dir.to_owned());
            }
        }
        self.targets
            .insert(dir.to_owned(), (Target::Directory, PathBuf::new()));
        Ok(())
    }

    fn file(&mut self, source: &Path, destination: &Path) -> Result<(), InstallError> {
        if let Some((_, first)) = self.targets.get(destination) {
            return Err(InstallError::Collision {
                destination: destination.to_owned(),
                first: first.clone(),
                second: source.to_owned(),
            });
        }
        self.targets
            .insert(destination.to_owned(), (Target::File, source.to_owned()));
        match self.on_disk(destination) {
            None => {}
            Some(meta) if meta.is_dir() => {
                return Err(InstallError::Destination {
                    destination: destination.display().to_string(),
                    why: "a directory is in the way of a file of the bundle".to_owned(),
                });
            }
            Some(_) => match self.behavior {
                FileExistsBehavior::Disallow => {
                    return Err(InstallError::FileExists {
                        path: destination.to_owned(),
                    });
                }
                FileExistsBehavior::Retain => {
                    self.plan.retained.push(destination.to_owned());
                    return Ok(());
                }
                FileExistsBehavior::Overwrite => {}
            },
        }
        self.plan.instructions.push(Instruction::Copy {
            source: source.to_owned(),
            destination: destination.to_owned(),
        });
        Ok(())
    }
}

/// A `source` made relative to the bundle root: a leading `/` still means the root, `/` alone is
/// the whole bundle. `None` when it climbs out with `..`.
pub fn bundle_relative(source: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(source).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}
