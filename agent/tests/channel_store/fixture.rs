//! One test's world: a scratch folder with the agent's data dir, a trusted key and a stranger's
//! key made by `ssh-keygen`, the allowed_signers file, bundles, and hostile archives.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use shoal_agent::channel::cache::ReleaseCache;
use shoal_agent::verify::state::ChannelState;
use shoal_shared::release::AllowedSigners;
use shoal_tests::signing::{SigningKey, Trust, ssh_sign};
use tempfile::TempDir;

pub const GROUP: &str = "web";
pub const PRINCIPAL: &str = Trust::PRINCIPAL;

pub struct World {
    pub dir: TempDir,
    pub data_dir: PathBuf,
    pub key: SigningKey,
    pub stranger: SigningKey,
    pub signers: AllowedSigners,
    pub signers_file: PathBuf,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let Trust {
            key,
            stranger,
            signers_file,
        } = Trust::new(dir.path());
        let signers = AllowedSigners::parse(&fs::read_to_string(&signers_file).unwrap()).unwrap();
        let data_dir = dir.path().join("data");
        World {
            dir,
            data_dir,
            key,
            stranger,
            signers,
            signers_file,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The group's channel state, loaded from disk as a restarted agent would.
    pub fn state(&self) -> ChannelState {
        ChannelState::load(&ChannelState::path_for(&self.data_dir, GROUP)).unwrap()
    }

    pub fn cache(&self) -> ReleaseCache {
        ReleaseCache::new(&self.data_dir)
    }

    /// A small application directory: an AppSpec, an executable script and a config file.
    pub fn app_dir(&self, name: &str, greeting: &str) -> PathBuf {
        let dir = self.path().join("bundles").join(name);
        fs::create_dir_all(dir.join("scripts")).unwrap();
        fs::write(dir.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        let script = dir.join("scripts/start.sh");
        fs::write(&script, format!("#!/bin/sh\necho {greeting}\n")).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("app.conf"), format!("greeting = {greeting}\n")).unwrap();
        dir
    }

    /// `dir`'s contents as a .tar.gz made by the real `tar`.
    pub fn tar_gz(&self, dir: &Path) -> Vec<u8> {
        let archive = self.path().join(format!(
            "{}.tar.gz",
            dir.file_name().unwrap().to_string_lossy()
        ));
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(dir)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar -czf");
        fs::read(archive).unwrap()
    }

    /// The armored signature `ssh-keygen -Y sign -n namespace` makes over `text`.
    pub fn sign(&self, key: &SigningKey, namespace: &str, text: &str) -> String {
        let scratch = tempfile::tempdir_in(self.path()).unwrap();
        let file = scratch.path().join("release.yaml");
        fs::write(&file, text).unwrap();
        fs::read_to_string(ssh_sign(key, namespace, &file)).unwrap()
    }

    /// A file name no other test uses, for what a hostile bundle tries to write.
    pub fn marker(&self) -> String {
        format!(
            "escaped-{}",
            self.path().file_name().unwrap().to_string_lossy()
        )
    }

    /// Every file named `name` under the world's folder, and directly in its parent (where an
    /// entry climbing out of the world would land).
    pub fn find_named(&self, name: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, name: &str, recurse: bool, found: &mut Vec<PathBuf>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_name() == name {
                    found.push(path.clone());
                }
                if recurse && fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    walk(&path, name, true, found);
                }
            }
        }
        let mut found = Vec::new();
        walk(self.path(), name, true, &mut found);
        walk(self.path().parent().unwrap(), name, false, &mut found);
        found
    }

    /// What the release cache holds: files under blobs/, trees/ and tmp/.
    pub fn cache_entries(&self) -> Vec<String> {
        let root = self.data_dir.join("releases");
        let mut names = Vec::new();
        for sub in ["blobs", "trees", "tmp"] {
            if let Ok(entries) = fs::read_dir(root.join(sub)) {
                for entry in entries.flatten() {
                    names.push(format!("{sub}/{}", entry.file_name().to_string_lossy()));
                }
            }
        }
        names.sort();
        names
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A tar archive built header by header, so entries can have any name, type and size
/// (the `tar` crate's builder refuses `..` and absolute names).
#[derive(Default)]
pub struct RawTar {
    bytes: Vec<u8>,
}

impl RawTar {
    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.entry(name, tar::EntryType::Regular, data.len() as u64, None);
        self.bytes.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Symlink, 0, Some(target));
        self
    }

    /// A file header declaring `size` bytes, with no data after it.
    pub fn declared_only(mut self, name: &str, size: u64) -> Self {
        self.entry(name, tar::EntryType::Regular, size, None);
        self
    }

    pub fn gz(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0; 1024]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &self.bytes).unwrap();
        gz.finish().unwrap()
    }

    fn entry(&mut self, name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
    }

    fn pad(&mut self) {
        let rem = self.bytes.len() % 512;
        if rem != 0 {
            self.bytes.extend(std::iter::repeat_n(0, 512 - rem));
        }
    }
}
