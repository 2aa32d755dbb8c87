//! One scene for channel tests: a repository with a commit, a trusted release key, an
//! allowed_signers file, and a data directory holding the channel's mirror, state and cache.

use std::path::{Path, PathBuf};

use shoal_agent::channel::Poll;
use shoal_agent::channel::cache::ReleaseCache;
use shoal_agent::channel::git::{GitChannel, GitSource};
use shoal_agent::verify::state::ChannelState;
use shoal_shared::release::AllowedSigners;
use tempfile::TempDir;

use shoal_tests::signing::git::Repo;
use shoal_tests::signing::{SigningKey, allowed_signers_line};

/// The principal of the trusted key.
pub const PRINCIPAL: &str = "release@example";
/// The group every channel here belongs to; also its application (none is configured), which
/// the harness binds signed tags to by default.
pub const GROUP: &str = "web";
/// A fixed "now" for polls: 2030-01-01; every tag here has a tagger time, which is what counts.
pub const NOW: i64 = 1_893_456_000;

pub struct Scene {
    pub dir: TempDir,
    pub repo: Repo,
    pub key: SigningKey,
    pub signers_path: PathBuf,
}

impl Scene {
    /// A repository with one commit and a trusted key (no options).
    pub fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["repo", "keys", "data"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let repo = Repo::init(&dir.path().join("repo"));
        repo.commit_file("appspec.yml", "version: 0.0\nos: linux\n", "first");
        let key = SigningKey::generate(&dir.path().join("keys"), PRINCIPAL);
        let signers_path = dir.path().join("keys/allowed_signers");
        let scene = Scene {
            dir,
            repo,
            key,
            signers_path,
        };
        scene.write_signers(&[allowed_signers_line(PRINCIPAL, &scene.key, "")]);
        scene
    }

    /// Another key, not trusted until listed.
    pub fn other_key(&self, comment: &str) -> SigningKey {
        SigningKey::generate(&self.dir.path().join("keys"), comment)
    }

    pub fn write_signers(&self, lines: &[String]) {
        std::fs::write(&self.signers_path, lines.join("\n") + "\n").unwrap();
    }

    pub fn signers(&self) -> AllowedSigners {
        AllowedSigners::parse(&std::fs::read_to_string(&self.signers_path).unwrap()).unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn source(&self) -> GitSource {
        GitSource::new(self.repo.dir().to_str().unwrap())
    }

    pub fn channel(&self) -> GitChannel {
        self.channel_for(self.source())
    }

    pub fn channel_for(&self, source: GitSource) -> GitChannel {
        GitChannel::open(source, &self.data_dir(), GROUP, GROUP).unwrap()
    }

    /// The group's state, loaded from disk as a restarted agent would.
    pub fn state(&self) -> ChannelState {
        ChannelState::load(&ChannelState::path_for(&self.data_dir(), GROUP)).unwrap()
    }

    pub fn cache(&self) -> ReleaseCache {
        ReleaseCache::new(&self.data_dir())
    }

    /// One poll with a freshly loaded state.
    pub fn poll(&self, channel: &mut GitChannel) -> Poll {
        let mut state = self.state();
        channel.poll(&self.signers(), &mut state, NOW).unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// The refusals of a poll as `(tag, kind)`.
pub fn refusals(poll: &Poll) -> Vec<(String, &'static str)> {
    poll.refusals
        .iter()
        .map(|(name, r)| (name.clone(), r.kind()))
        .collect()
}

/// The newest release's tag name, if any.
pub fn newest(poll: &Poll) -> Option<&str> {
    poll.newest.as_ref().map(|r| r.version.name())
}

/// Every file under `dir`, relative, sorted (symlinks not followed).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.symlink_metadata().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}
