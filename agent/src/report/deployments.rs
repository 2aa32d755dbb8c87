//! The deployments the status endpoint serves, read from the deployment root on disk: every
//! group's deployment directories that hold a record, one by id with the end of its hook output,
//! and the hook output itself from a byte offset. Blocking file I/O: call it off the runtime.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use shoal_shared::status::{DeploymentDetail, DeploymentSummary};

use super::board::summarize;
use crate::execute::deployment::{DeploymentRecord, Status};
use crate::execute::layout::{Layout, is_safe_component};

/// How much of the end of `scripts.log` a deployment's detail carries.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// The directory beside the groups' that holds CodeDeploy's instruction files.
const INSTRUCTIONS_DIR: &str = "deployment-instructions";

/// Why a deployment cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentsError {
    /// The id cannot name a deployment directory.
    #[error(
        "`{id}` is not a deployment id: ids look like d-0123456789ab, d-0123456789ab.2 or d-0123456789ab-local"
    )]
    BadId {
        /// What was asked for.
        id: String,
    },
    /// No group has a deployment with this id.
    #[error("no deployment `{id}` on this host: `shoal status` or GET /v1/deployments lists them")]
    NotFound {
        /// What was asked for.
        id: String,
    },
    /// The log's offset asked for is not a byte count.
    #[error("offset `{offset}` is not a byte count: use ?offset=N with N a whole number >= 0")]
    BadOffset {
        /// The offset as written in the query.
        offset: String,
    },
    /// The log is shorter than the offset asked for (it was replaced since).
    #[error("offset {offset} is past the end of the log ({size} bytes): start again from 0")]
    OffsetPastEnd {
        /// The offset asked for.
        offset: u64,
        /// The log's size now.
        size: u64,
    },
    /// A file or directory of the deployment root cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The hook output of a deployment, opened at an offset, with what a follower needs to know.
#[derive(Debug)]
pub struct LogSlice {
    /// The log positioned at the offset; `None` when no hook has written anything yet.
    pub file: Option<File>,
    /// The log's size when it was opened: the body is the bytes from the offset up to this.
    pub size: u64,
    /// Where the body starts.
    pub offset: u64,
    /// The deployment's result when the log was opened (read before its size, so a result
    /// other than `in-progress` means the body holds the whole rest of the log).
    pub result: String,
}

/// Whether `id` may name a deployment directory: one safe path component starting with `d-`.
pub fn is_deployment_id(id: &str) -> bool {
    id.len() > 2 && id.starts_with("d-") && is_safe_component(id)
}

/// Every deployment under `root`, newest first (by start time, then by name).
pub fn list(root: &Path) -> Result<Vec<DeploymentSummary>, DeploymentsError> {
    records(group_dirs(root)?)
}

/// The deployments of `group` under `root`, newest first.
pub fn list_group(root: &Path, group: &str) -> Result<Vec<DeploymentSummary>, DeploymentsError> {
    let dir = root.join(group);
    let dirs = if is_safe_component(group) && dir.is_dir() {
        vec![dir]
    } else {
        Vec::new()
    };
    records(dirs)
}

/// The deployments in `group_dirs`, newest first.
fn records(group_dirs: Vec<PathBuf>) -> Result<Vec<DeploymentSummary>, DeploymentsError> {
    let mut found = Vec::new();
    for group_dir in group_dirs {
        for (name, dir) in subdirs(&group_dir)? {
            if !is_deployment_id(&name) {
                continue;
            }
            match DeploymentRecord::load(&dir) {
                Ok(Some(record)) => found.push((record.started_at_ms, name, record)),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    path = %Layout::record_file(&dir).display(),
                    error = %e,
                    "skipping an unreadable deployment record"
                ),
            }
        }
    }
    found.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    Ok(found
        .iter()
        .map(|(_, name, record)| summarize(name, record))
        .collect())
}

/// The deployment `id` with its warnings and the end of its hook output.
pub fn detail(root: &Path, id: &str) -> Result<DeploymentDetail, DeploymentsError> {
    let (dir, record) = find(root, id)?;
    let log = Layout::scripts_log(&dir);
    let (log_tail, log_size) = tail(&log).map_err(|source| DeploymentsError::Read {
        path: log.clone(),
        source,
    })?;
    Ok(DeploymentDetail {
        summary: summarize(id, &record),
        warnings: record.warnings,
        log_tail,
        log_size,
        log_hidden: false,
    })
}

/// What shows why the deployment in `dir` failed, in a few short lines: the output of the
/// event that failed (its lines of `scripts.log`, without their timestamps), or the record's
/// error when that event wrote none (a health check, a refused bundle). Empty when the record
/// cannot be read.
pub fn failure_output(dir: &Path) -> Vec<String> {
    let Ok(Some(record)) = DeploymentRecord::load(dir) else {
        return Vec::new();
    };
    let failed = record
        .events
        .iter()
        .rev()
        .find(|e| e.status == Status::Failed)
        .map(|e| format!(" [{}] ", e.name));
    let (log, _) = tail(&Layout::scripts_log(dir)).unwrap_or_default();
    let lines: Vec<&str> = match &failed {
        Some(marker) => log
            .lines()
            .filter_map(|line| line.find(marker.as_str()).map(|at| &line[at + 1..]))
            // The agent's own note of where the script is: long, and no news.
            .filter(|line| !line.contains("] [shoal] script started: "))
            .collect(),
        None => Vec::new(),
    };
    if lines.is_empty() {
        let error = record.error.unwrap_or_default();
        return shoal_shared::gossip::output_tail(&error);
    }
    shoal_shared::gossip::output_tail(&lines.join("\n"))
}

/// The hook output of deployment `id` from byte `offset` on.
pub fn open_log(root: &Path, id: &str, offset: u64) -> Result<LogSlice, DeploymentsError> {
    let (dir, record) = find(root, id)?;
    let path = Layout::scripts_log(&dir);
    let read_error = |source| DeploymentsError::Read {
        path: path.clone(),
        source,
    };
    let (file, size) = match File::open(&path) {
        Ok(file) => {
            let size = file.metadata().map_err(read_error)?.len();
            (Some(file), size)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (None, 0),
        Err(e) => return Err(read_error(e)),
    };
    if offset > size {
        return Err(DeploymentsError::OffsetPastEnd { offset, size });
    }
    let file = match file {
        Some(mut file) => {
            file.seek(SeekFrom::Start(offset)).map_err(read_error)?;
            Some(file)
        }
        None => None,
    };
    Ok(LogSlice {
        file,
        size,
        offset,
        result: record.status.as_str().to_owned(),
    })
}

/// The directory and record of deployment `id`, in whichever group holds it (the newest when
/// more than one does).
fn find(root: &Path, id: &str) -> Result<(PathBuf, DeploymentRecord), DeploymentsError> {
    if !is_deployment_id(id) {
        return Err(DeploymentsError::BadId { id: id.to_owned() });
    }
    let mut best: Option<(PathBuf, DeploymentRecord)> = None;
    for group_dir in group_dirs(root)? {
        let dir = group_dir.join(id);
        let record = DeploymentRecord::load(&dir).map_err(|source| DeploymentsError::Read {
            path: Layout::record_file(&dir),
            source,
        })?;
        if let Some(record) = record
            && best
                .as_ref()
                .is_none_or(|(_, b)| b.started_at_ms < record.started_at_ms)
        {
            best = Some((dir, record));
        }
    }
    best.ok_or_else(|| DeploymentsError::NotFound { id: id.to_owned() })
}

/// The group directories under `root` (none when it does not exist yet).
fn group_dirs(root: &Path) -> Result<Vec<PathBuf>, DeploymentsError> {
    Ok(subdirs(root)?
        .into_iter()
        .filter(|(name, _)| name != INSTRUCTIONS_DIR && is_safe_component(name))
        .map(|(_, dir)| dir)
        .collect())
}

/// The directories in `dir` whose names are UTF-8, with their paths.
fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, DeploymentsError> {
    let read_error = |source| DeploymentsError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        if !entry.file_type().map_err(read_error)?.is_dir() {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string() {
            dirs.push((name, entry.path()));
        }
    }
    Ok(dirs)
}

/// The last [`TAIL_BYTES`] of the log at `path`, starting at a line when it was cut, and the
/// log's size; empty when there is no log yet.
fn tail(path: &Path) -> io::Result<(String, u64)> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((String::new(), 0)),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let start = size.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(size - start).read_to_end(&mut bytes)?;
    let mut text = bytes.as_slice();
    if start > 0
        && let Some(newline) = text.iter().position(|&b| b == b'\n')
        && newline + 1 < text.len()
    {
        text = &text[newline + 1..];
    }
    Ok((String::from_utf8_lossy(text).into_owned(), size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::deployment::EventRecord;

    fn record(group: &str, started_at_ms: u64) -> DeploymentRecord {
        DeploymentRecord {
            deployment_id: "d-0123456789ab".into(),
            group: group.into(),
            application: "app".into(),
            revision: "v1.0.0".into(),
            previous_revision: None,
            reverts: None,
            bundle: "b".into(),
            status: Status::Succeeded,
            started_at_ms,
            finished_at_ms: Some(started_at_ms + 1),
            events: Vec::new(),
            warnings: vec!["mode 0644 read as octal".into()],
            error: None,
        }
    }

    #[test]
    fn ids_are_single_components_starting_with_d() {
        for good in ["d-0123456789ab", "d-0123456789ab.2", "d-0123456789ab-local"] {
            assert!(is_deployment_id(good), "{good}");
        }
        for bad in ["", "d-", "x-1", "..", "d-1/..", "../d-1", "d-1%2f", "d-1 2"] {
            assert!(!is_deployment_id(bad), "{bad}");
        }
    }

    #[test]
    fn lists_every_group_newest_first_and_skips_what_is_not_a_deployment() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        record("web", 1_000)
            .save(&root.join("web/d-aaaaaaaaaaaa"))
            .expect("save");
        record("web", 3_000)
            .save(&root.join("web/d-aaaaaaaaaaaa.2"))
            .expect("save");
        record("db", 2_000)
            .save(&root.join("db/d-bbbbbbbbbbbb"))
            .expect("save");
        record("db", 3_000)
            .save(&root.join("db/d-cccccccccccc"))
            .expect("save");
        record("db", 9_000)
            .save(&root.join("db/not-a-deployment"))
            .expect("save");
        record("x", 9_000)
            .save(&root.join("deployment-instructions/d-dddddddddddd"))
            .expect("save");
        std::fs::create_dir_all(root.join("db/d-eeeeeeeeeeee")).expect("create_dir_all");
        std::fs::write(root.join("db/d-ffffffffffff"), "a file").expect("write");
        let ids: Vec<String> = list(root)
            .expect("list")
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(
            ids,
            [
                "d-cccccccccccc",
                "d-aaaaaaaaaaaa.2",
                "d-bbbbbbbbbbbb",
                "d-aaaaaaaaaaaa"
            ]
        );
        assert!(list(&root.join("missing")).expect("list").is_empty());
    }

    #[test]
    fn detail_carries_warnings_and_a_tail_cut_at_a_line() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("web/d-aaaaaaaaaaaa");
        record("web", 1_000).save(&dir).expect("save");
        let empty = detail(root.path(), "d-aaaaaaaaaaaa").expect("detail");
        assert_eq!((empty.log_tail.as_str(), empty.log_size), ("", 0));
        assert_eq!(empty.warnings, ["mode 0644 read as octal"]);
        let line = "x".repeat(99) + "\n";
        let log = line.repeat(1000);
        std::fs::create_dir_all(dir.join("logs")).expect("create_dir_all");
        std::fs::write(Layout::scripts_log(&dir), &log).expect("write");
        let full = detail(root.path(), "d-aaaaaaaaaaaa").expect("detail");
        assert_eq!(full.log_size, 100_000);
        assert!(full.log_tail.len() <= TAIL_BYTES as usize);
        assert!(full.log_tail.len() > TAIL_BYTES as usize - 100);
        assert!(full.log_tail.starts_with('x') && full.log_tail.len().is_multiple_of(100));
    }

    #[test]
    fn a_failures_output_is_the_failed_events_lines_or_the_error() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("web/d-aaaaaaaaaaaa");
        let event = |name: &str, status| EventRecord {
            name: name.into(),
            status,
            duration_ms: 5,
            scripts: Vec::new(),
            message: None,
        };
        let mut failed = record("web", 1_000);
        failed.status = Status::Failed;
        failed.error = Some("ValidateService: scripts/check.sh exited 1".into());
        failed.events = vec![
            event("ApplicationStart", Status::Succeeded),
            event("ValidateService", Status::Failed),
        ];
        failed.save(&dir).expect("save");
        // No output: the error says why.
        assert_eq!(
            failure_output(&dir),
            ["ValidateService: scripts/check.sh exited 1"]
        );
        std::fs::create_dir_all(dir.join("logs")).expect("create_dir_all");
        let mut log =
            String::from("2026-12-07T10:00:00Z [ApplicationStart] [s.sh] [stdout] started\n");
        for i in 1..=12 {
            log += &format!(
                "2026-12-07T10:00:0{}Z [ValidateService] [check.sh] [stderr] try {i}\n",
                i % 10
            );
        }
        std::fs::write(Layout::scripts_log(&dir), &log).expect("write");
        let output = failure_output(&dir);
        assert_eq!(output.len(), shoal_shared::gossip::MAX_TAIL_LINES);
        assert_eq!(
            output.last().map(String::as_str),
            Some("[ValidateService] [check.sh] [stderr] try 12")
        );
        assert!(
            output.iter().all(|l| !l.contains("ApplicationStart")),
            "{output:?}"
        );
        assert!(failure_output(&root.path().join("web/d-nothing")).is_empty());
    }

    #[test]
    fn unknown_and_bad_ids_are_told_apart() {
        let root = tempfile::tempdir().expect("tempdir");
        record("web", 1)
            .save(&root.path().join("web/d-aaaaaaaaaaaa"))
            .expect("save");
        assert!(matches!(
            detail(root.path(), "d-bbbbbbbbbbbb"),
            Err(DeploymentsError::NotFound { .. })
        ));
        assert!(matches!(
            detail(root.path(), "../web"),
            Err(DeploymentsError::BadId { .. })
        ));
    }

    #[test]
    fn the_log_opens_at_an_offset_and_refuses_one_past_its_end() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("web/d-aaaaaaaaaaaa");
        record("web", 1).save(&dir).expect("save");
        let none = open_log(root.path(), "d-aaaaaaaaaaaa", 0).expect("open_log");
        assert!(none.file.is_none() && none.size == 0);
        std::fs::create_dir_all(dir.join("logs")).expect("create_dir_all");
        std::fs::write(Layout::scripts_log(&dir), "hello\nworld\n").expect("write");
        let mut slice = open_log(root.path(), "d-aaaaaaaaaaaa", 6).expect("open_log");
        let mut rest = String::new();
        slice
            .file
            .take()
            .expect("a log file")
            .read_to_string(&mut rest)
            .expect("read_to_string");
        assert_eq!(
            (rest.as_str(), slice.size, slice.result.as_str()),
            ("world\n", 12, "succeeded")
        );
        assert!(matches!(
            open_log(root.path(), "d-aaaaaaaaaaaa", 13),
            Err(DeploymentsError::OffsetPastEnd {
                offset: 13,
                size: 12
            })
        ));
    }
}
