//! A scratch git repository driven through the real `git` CLI: commits, and release tags that
//! are signed with an ssh key, unsigned, lightweight, tampered with, or moved. Signed tags are
//! bound to an application (a `Shoal-Application:` line), `web` unless told otherwise, as the
//! documented `git tag -s` recipe makes them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::SigningKey;
use crate::command;

/// The marker git puts before an ssh signature in a tag object.
const SSH_SIGNATURE: &str = "-----BEGIN SSH SIGNATURE-----";

/// The application signed tags are bound to unless [`Repo::for_application`] says otherwise:
/// the name of the group most tests configure.
pub const DEFAULT_APPLICATION: &str = "web";

/// A git repository with a working tree, committer `Release Bot <release@example>`, and
/// `gpg.format = ssh`. Every command runs without the host's git configuration; its `HOME` is
/// an empty folder inside `.git`.
#[derive(Debug)]
pub struct Repo {
    dir: PathBuf,
    home: PathBuf,
    /// What signed tags are bound to; `None` makes unbound tags (as before shoal bound them).
    application: Option<String>,
}

impl Repo {
    /// `git init` in `dir` (created if missing) on branch `main`, configured for ssh signing.
    /// Nothing is signed unless asked: `commit.gpgsign` and `tag.gpgsign` are false.
    pub fn init(dir: &Path) -> Repo {
        let home = dir.join(".git/shoal-home");
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
        let repo = Repo {
            dir: dir.to_owned(),
            home,
            application: Some(DEFAULT_APPLICATION.to_owned()),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        for (key, value) in [
            ("user.name", "Release Bot"),
            ("user.email", "release@example"),
            ("gpg.format", "ssh"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
        ] {
            repo.git(&["config", key, value]);
        }
        repo
    }

    /// Binds the signed tags made from now on to `application` (`Some`), or to none (`None`:
    /// a tag as made before releases named their application).
    pub fn for_application(mut self, application: Option<&str>) -> Repo {
        self.application = application.map(str::to_owned);
        self
    }

    /// The message `git tag -s` is given for `message`: `-m message`, then, when the repository
    /// binds its tags, `-m "Shoal-Application: <app>"` (a paragraph of its own, like git's
    /// trailers), exactly as the recipe in docs/signing-and-releases.md.
    fn message_args(&self, message: &str) -> Vec<String> {
        let mut args = vec!["-m".to_owned(), message.to_owned()];
        if let Some(application) = &self.application {
            args.push("-m".to_owned());
            args.push(format!("Shoal-Application: {application}"));
        }
        args
    }

    /// The working tree.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `git args...` in the repository; returns its stdout, or panics with its stderr.
    pub fn git(&self, args: &[&str]) -> String {
        command::stdout(self.command(None).args(args))
    }

    /// Writes `content` to `path` (relative to the working tree), commits it with `message`,
    /// and returns the new commit id.
    pub fn commit_file(&self, path: &str, content: &str, message: &str) -> String {
        let file = self.dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        std::fs::write(&file, content)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        self.git(&["add", "--", path]);
        self.git(&["commit", "-q", "-m", message]);
        self.head()
    }

    /// The commit id of `HEAD`.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `git tag -s name -m message -m "Shoal-Application: <app>"` at `HEAD` (without the second
    /// `-m` for a repository that binds nothing), signed by `key` through
    /// `-c gpg.format=ssh -c user.signingkey=<key.pub>`. `date` (anything git reads, such as
    /// `2019-06-01T00:00:00Z`) pins the tagger time, which is the time `git verify-tag` checks
    /// an allowed_signers `valid-after`/`valid-before` window against (shoal does not: it
    /// judges a release at the time it first sees it).
    pub fn tag_signed(&self, name: &str, message: &str, key: &SigningKey, date: Option<&str>) {
        let signing_key = format!("user.signingkey={}", key.public.display());
        command::stdout(
            self.command(date)
                .args(["-c", "gpg.format=ssh", "-c", &signing_key])
                .args(["tag", "-s", name])
                .args(self.message_args(message)),
        );
    }

    /// `git tag -a name -m message` at `HEAD`: an annotated tag with no signature.
    pub fn tag_annotated_unsigned(&self, name: &str, message: &str) {
        self.git(&["tag", "-a", name, "-m", message]);
    }

    /// `git tag name` at `HEAD`: a lightweight tag, a bare ref with no tag object.
    pub fn tag_lightweight(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// Forges tag `name` from the signed tag `from_signed_tag`: the same object, tagger and
    /// signature, with the message replaced by `new_message` (and the `tag` header renamed to
    /// `name`), written with `git mktag` and pointed at by `refs/tags/<name>`. Its signature no
    /// longer matches; `name` may equal `from_signed_tag` to tamper with a tag in place.
    pub fn tag_tampered(&self, name: &str, from_signed_tag: &str, new_message: &str) {
        let original = self.tag_object(from_signed_tag);
        let (header, body) = original
            .split_once("\n\n")
            .unwrap_or_else(|| panic!("tag {from_signed_tag} has no message:\n{original}"));
        let signature = body
            .find(SSH_SIGNATURE)
            .map(|at| &body[at..])
            .unwrap_or_else(|| panic!("tag {from_signed_tag} is not ssh-signed:\n{original}"));
        let header: Vec<String> = header
            .lines()
            .map(|line| match line.strip_prefix("tag ") {
                Some(_) => format!("tag {name}"),
                None => line.to_owned(),
            })
            .collect();
        let mut message = new_message.to_owned();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        let forged = format!("{}\n\n{message}{signature}", header.join("\n"));
        let forged_file = self.home.join("forged-tag");
        std::fs::write(&forged_file, forged)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", forged_file.display()));
        let stdin = File::open(&forged_file)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", forged_file.display()));
        let id = command::stdout(self.command(None).arg("mktag").stdin(stdin));
        self.git(&["update-ref", &format!("refs/tags/{name}"), id.trim()]);
    }

    /// Re-tags `name`, signed by `key`, at `to_commit` (`git tag -s -f`, bound as the
    /// repository binds), as a release manager who moves a published tag would.
    pub fn move_tag(&self, name: &str, to_commit: &str, key: &SigningKey) {
        let signing_key = format!("user.signingkey={}", key.public.display());
        let message = format!("{name} moved to {to_commit}");
        command::stdout(
            self.command(None)
                .args(["-c", "gpg.format=ssh", "-c", &signing_key])
                .args(["tag", "-s", "-f", name])
                .args(self.message_args(&message))
                .arg(to_commit),
        );
    }

    /// The raw tag object behind `name` (`git cat-file tag name`), signature included.
    pub fn tag_object(&self, name: &str) -> String {
        self.git(&["cat-file", "tag", name])
    }

    /// Splits the signed tag `name` into what git hands `ssh-keygen -Y verify`: the signed
    /// payload and the armored signature, written to `<dir>/<name>.payload` and
    /// `<dir>/<name>.payload.sig` (so [`super::ssh_verify`] can check them).
    pub fn tag_signature_files(&self, name: &str, dir: &Path) -> (PathBuf, PathBuf) {
        let object = self.tag_object(name);
        let at = object
            .find(SSH_SIGNATURE)
            .unwrap_or_else(|| panic!("tag {name} is not ssh-signed:\n{object}"));
        let payload = dir.join(format!("{name}.payload"));
        let sig = dir.join(format!("{name}.payload.sig"));
        for (path, text) in [(&payload, &object[..at]), (&sig, &object[at..])] {
            std::fs::write(path, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        (payload, sig)
    }

    /// `git -c gpg.ssh.allowedSignersFile=<allowed_signers> verify-tag name`: whether git
    /// accepted the tag, and what it printed.
    pub fn verify_tag(&self, name: &str, allowed_signers: &Path) -> (bool, String) {
        let signers = format!("gpg.ssh.allowedSignersFile={}", allowed_signers.display());
        command::outcome(
            self.command(None)
                .args(["-c", &signers, "verify-tag", name]),
        )
    }

    fn command(&self, date: Option<&str>) -> Command {
        let mut cmd = command::clean("git", &self.home);
        cmd.current_dir(&self.dir);
        if let Some(date) = date {
            cmd.env("GIT_COMMITTER_DATE", date)
                .env("GIT_AUTHOR_DATE", date);
        }
        cmd
    }
}
