//! Interoperability with OpenSSH: signatures made by the real `ssh-keygen -Y sign` are checked
//! by shoal and by `ssh-keygen -Y verify` against the same `allowed_signers` lines, and the two
//! must agree on every case.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use shoal_shared::release::{AllowedSigners, verify};

struct Key {
    private: PathBuf,
    public_line: String,
}

fn ssh_keygen(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("ssh-keygen runs (install openssh-client)")
}

fn new_key(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let out = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            name,
            "-f",
            &private.to_string_lossy(),
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public_line = std::fs::read_to_string(private.with_extension("pub")).expect("pub key");
    Key {
        private,
        public_line: public_line.trim().to_owned(),
    }
}

fn sign(dir: &Path, key: &Key, namespace: &str, message: &[u8]) -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("msg-{namespace}-{n}"));
    std::fs::write(&file, message).expect("write message");
    let out = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-n",
            namespace,
            "-f",
            &key.private.to_string_lossy(),
            &file.to_string_lossy(),
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(file.with_extension("sig")).expect("signature file")
}

/// `ssh-keygen -Y verify` as git runs it: find the principals of the key, then verify as each.
fn openssh_accepts(dir: &Path, allowed: &str, namespace: &str, message: &[u8], sig: &[u8]) -> bool {
    let allowed_file = dir.join("allowed_signers");
    std::fs::write(&allowed_file, allowed).expect("write allowed_signers");
    let sig_file = dir.join("check.sig");
    std::fs::write(&sig_file, sig).expect("write sig");
    let found = ssh_keygen(
        &[
            "-Y",
            "find-principals",
            "-f",
            &allowed_file.to_string_lossy(),
            "-s",
            &sig_file.to_string_lossy(),
        ],
        dir,
    );
    if !found.status.success() {
        return false;
    }
    // git tries each principal found for the key until one verifies.
    String::from_utf8_lossy(&found.stdout)
        .lines()
        .any(|principal| {
            // A wildcard principal stands for the identity git would pass; use a matching one.
            let identity = principal
                .split(',')
                .next()
                .unwrap_or("")
                .replace('*', "release");
            let mut child = Command::new("ssh-keygen")
                .args([
                    "-Y",
                    "verify",
                    "-f",
                    &allowed_file.to_string_lossy(),
                    "-I",
                    &identity,
                    "-n",
                    namespace,
                ])
                .arg("-s")
                .arg(&sig_file)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("ssh-keygen");
            std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), message)
                .expect("stdin");
            child.wait().expect("wait").success()
        })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// (name, allowed_signers, namespace checked, message, signature, expected to verify)
type Case<'a> = (&'a str, String, &'a str, &'a [u8], &'a [u8], bool);

#[test]
fn shoal_and_openssh_agree_on_every_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let key = new_key(d, "release");
    let other = new_key(d, "other");
    let msg = b"object 0123\ntype commit\ntag v1.0.0\n\nrelease\n".as_slice();
    let good = sign(d, &key, "git", msg);
    let by_other = sign(d, &other, "git", msg);
    let for_file = sign(d, &key, "file", msg);
    let k = &key.public_line;

    let cases: Vec<Case> = vec![
        (
            "listed key",
            format!("release@example.com {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "wildcard principal",
            format!("*@example.com {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "namespace allowed",
            format!("r@example.com namespaces=\"git,x\" {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "namespace not allowed",
            format!("r@example.com namespaces=\"shoal-release\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "signed for another namespace",
            format!("r@example.com {k}\n"),
            "git",
            msg,
            &for_file,
            false,
        ),
        (
            "key not listed",
            format!("r@example.com {k}\n"),
            "git",
            msg,
            &by_other,
            false,
        ),
        (
            "tampered message",
            format!("r@example.com {k}\n"),
            "git",
            b"object 0124\n",
            &good,
            false,
        ),
        (
            "valid-before passed",
            format!("r@example.com valid-before=\"20200101\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "valid-after in the future",
            format!("r@example.com valid-after=\"20990101\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "inside its window",
            format!("r@example.com valid-after=\"20200101\",valid-before=\"20990101Z\" {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "first valid line decides, even when a later one allows it",
            format!(
                "a@example.com namespaces=\"file\" {k}\nb@example.com namespaces=\"git\" {k}\n"
            ),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "an expired first line is passed over",
            format!("a@example.com valid-before=\"20200101\" {k}\nb@example.com {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "a negated namespace wins over a wildcard",
            format!("r@example.com namespaces=\"*,!git\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "a negated namespace wins when written first",
            format!("r@example.com namespaces=\"!git,*\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "only negations allow nothing",
            format!("r@example.com namespaces=\"!x\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "negating another namespace",
            format!("r@example.com namespaces=\"!x,*\" {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "a namespace wildcard",
            format!("r@example.com namespaces=\"g*\" {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "an empty namespaces list",
            format!("r@example.com namespaces=\"\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "namespaces are case-sensitive",
            format!("r@example.com namespaces=\"GIT\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "option names are not",
            format!("r@example.com NAMESPACES=\"git\" {k}\n"),
            "git",
            msg,
            &good,
            true,
        ),
        (
            "two namespaces options",
            format!("r@example.com namespaces=\"x\",namespaces=\"git\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "the same namespaces option twice",
            format!("r@example.com namespaces=\"git\",namespaces=\"git\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "two valid-before options",
            format!("r@example.com valid-before=\"20200101\",valid-before=\"20990101\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "the same valid-before twice",
            format!("r@example.com valid-before=\"20990101\",valid-before=\"20990101\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
        (
            "the same valid-after twice",
            format!("r@example.com valid-after=\"20200101\",valid-after=\"20200101\" {k}\n"),
            "git",
            msg,
            &good,
            false,
        ),
    ];
    let mut disagreements = Vec::new();
    for (name, allowed, namespace, message, sig, expected) in cases {
        // A line shoal cannot read refuses the whole file, so nothing it signs verifies.
        let ours = AllowedSigners::parse(&allowed)
            .map_err(|e| e.to_string())
            .and_then(|signers| {
                verify(sig, message, namespace, &signers, now()).map_err(|e| e.to_string())
            });
        let theirs = openssh_accepts(d, &allowed, namespace, message, sig);
        if theirs != expected {
            disagreements.push(format!("{name}: ssh-keygen said {theirs}"));
        }
        if ours.is_ok() != expected {
            disagreements.push(format!("{name}: shoal said {ours:?}"));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// Signs with a fresh `ssh-keygen -t <key_type>` key listed in allowed_signers: shoal must refuse
/// the signature as an unsupported algorithm named `expected`.
fn assert_refused_by_name(keygen_args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let private = dir.path().join("key");
    let mut args = vec!["-q", "-N", "", "-f"];
    let path = private.to_string_lossy().into_owned();
    args.push(&path);
    args.extend_from_slice(keygen_args);
    assert!(ssh_keygen(&args, dir.path()).status.success());
    let key = Key {
        public_line: std::fs::read_to_string(private.with_extension("pub")).expect("pub"),
        private,
    };
    let sig = sign(dir.path(), &key, "git", b"m");
    let signers =
        AllowedSigners::parse(&format!("k@example.com {}", key.public_line)).expect("parse");
    let err = verify(&sig, b"m", "git", &signers, now()).expect_err(expected);
    assert_eq!(err.kind(), "unsupported_algorithm");
    assert!(err.to_string().contains(expected), "{err}");
}

#[test]
fn ecdsa_and_rsa_signatures_are_refused_by_name() {
    assert_refused_by_name(&["-t", "ecdsa"], "ecdsa-sha2-nistp256");
    assert_refused_by_name(&["-t", "rsa", "-b", "2048"], "rsa-sha2-512");
}
