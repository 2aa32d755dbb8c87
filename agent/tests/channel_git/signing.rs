//! Stand-in for the harness's `shoal_tests::signing` until it lands: ssh keys from the real
//! `ssh-keygen`, and a scratch repository driven by the real `git` (tags signed, unsigned,
//! lightweight, tampered with `git mktag`, moved), isolated from the host's configuration.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `program` with an emptied environment: `PATH`, `HOME` = `home`, no git configuration, UTC.
pub fn clean(program: &str, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .env("TZ", "UTC");
    cmd
}

/// Runs `cmd`: whether it succeeded, and its stdout then stderr.
pub fn outcome(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run command");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs `cmd`, which must succeed; its stdout.
pub fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An ed25519 key made by `ssh-keygen`, no passphrase.
#[derive(Debug, Clone)]
pub struct SigningKey {
    #[allow(dead_code)] // as in the harness; these tests sign through the public key file
    pub private: PathBuf,
    pub public: PathBuf,
    pub public_line: String,
}

impl SigningKey {
    pub fn generate(dir: &Path, comment: &str) -> SigningKey {
        let stem: String = comment
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let private = dir.join(format!("{stem}_ed25519"));
        stdout(
            clean("ssh-keygen", dir)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(&private),
        );
        let public = PathBuf::from(format!("{}.pub", private.display()));
        let public_line = std::fs::read_to_string(&public).expect("read .pub");
        SigningKey {
            private,
            public,
            public_line: public_line.trim().to_owned(),
        }
    }

    pub fn key_text(&self) -> &str {
        let mut fields = self.public_line.splitn(3, ' ');
        let kind = fields.next().map_or(0, str::len);
        let blob = fields.next().map_or(0, str::len);
        &self.public_line[..kind + 1 + blob]
    }
}

/// `principal [options] ssh-ed25519 AAAA...`.
pub fn allowed_signers_line(principal: &str, key: &SigningKey, options: &str) -> String {
    if options.is_empty() {
        format!("{principal} {}", key.key_text())
    } else {
        format!("{principal} {options} {}", key.key_text())
    }
}

/// A repository with a working tree, committer `Release Bot <release@example>`.
#[derive(Debug)]
pub struct Repo {
    dir: PathBuf,
    home: PathBuf,
}

impl Repo {
    pub fn init(dir: &Path) -> Repo {
        let home = dir.join(".git/shoal-home");
        std::fs::create_dir_all(&home).expect("mkdir home");
        let repo = Repo {
            dir: dir.to_owned(),
            home,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        for (key, value) in [
            ("user.name", "Release Bot"),
            ("user.email", "release@example"),
            ("gpg.format", "ssh"),
        ] {
            repo.git(&["config", key, value]);
        }
        repo
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn git(&self, args: &[&str]) -> String {
        stdout(self.command(None).args(args))
    }

    pub fn commit_file(&self, path: &str, content: &str, message: &str) -> String {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, content).expect("write");
        self.git(&["add", "--", path]);
        self.git(&["commit", "-q", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    pub fn tag_signed(&self, name: &str, message: &str, key: &SigningKey, date: Option<&str>) {
        let signing_key = format!("user.signingkey={}", key.public.display());
        stdout(
            self.command(date)
                .args(["-c", "gpg.format=ssh", "-c", &signing_key])
                .args(["tag", "-s", name, "-m", message]),
        );
    }

    pub fn tag_annotated_unsigned(&self, name: &str, message: &str) {
        self.git(&["tag", "-a", name, "-m", message]);
    }

    pub fn tag_lightweight(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// `name` forged from `from_signed_tag`: same headers and signature, message replaced,
    /// written with `git mktag`.
    pub fn tag_tampered(&self, name: &str, from_signed_tag: &str, new_message: &str) {
        let original = self.git(&["cat-file", "tag", from_signed_tag]);
        let (header, body) = original.split_once("\n\n").expect("tag message");
        let at = body
            .find("-----BEGIN SSH SIGNATURE-----")
            .expect("ssh-signed");
        let header: Vec<String> = header
            .lines()
            .map(|l| match l.strip_prefix("tag ") {
                Some(_) => format!("tag {name}"),
                None => l.to_owned(),
            })
            .collect();
        let forged = format!("{}\n\n{new_message}\n{}", header.join("\n"), &body[at..]);
        let file = self.home.join("forged-tag");
        std::fs::write(&file, forged).expect("write forged tag");
        let id = stdout(
            self.command(None)
                .arg("mktag")
                .stdin(File::open(&file).expect("open")),
        );
        self.git(&["update-ref", &format!("refs/tags/{name}"), id.trim()]);
    }

    pub fn move_tag(&self, name: &str, to_commit: &str, key: &SigningKey) {
        let signing_key = format!("user.signingkey={}", key.public.display());
        stdout(
            self.command(None)
                .args(["-c", "gpg.format=ssh", "-c", &signing_key])
                .args(["tag", "-s", "-f", name, "-m", "moved", to_commit]),
        );
    }

    pub fn verify_tag(&self, name: &str, allowed_signers: &Path) -> (bool, String) {
        let signers = format!("gpg.ssh.allowedSignersFile={}", allowed_signers.display());
        outcome(
            self.command(None)
                .args(["-c", &signers, "verify-tag", name]),
        )
    }

    fn command(&self, date: Option<&str>) -> Command {
        let mut cmd = clean("git", &self.home);
        cmd.current_dir(&self.dir);
        if let Some(date) = date {
            cmd.env("GIT_COMMITTER_DATE", date)
                .env("GIT_AUTHOR_DATE", date);
        }
        cmd
    }
}
