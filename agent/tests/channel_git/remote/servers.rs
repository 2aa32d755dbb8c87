//! The servers the remote tests fetch from, started once for this test target on free ports
//! of 127.0.0.1: a second OpenSSH `sshd` (its own config, host key and authorized_keys), nginx
//! serving `git http-backend` through fcgiwrap over TLS (certificates from a CA made here: one
//! for 127.0.0.1, one for another name, one expired) and over plain http, and a listener that
//! accepts connections and never answers. A keeper process ends them all and removes their
//! directory when this process ends, however it ends: it waits for the end of a pipe that only
//! this process holds.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shoal_tests::command::{clean, stdout};
use shoal_tests::poll_until;

use super::certs;

/// The user whose key the sshd accepts (the only one with an authorized_keys file).
pub const SSH_USER: &str = "root";
/// The https user and token of the repositories under `/private/`.
pub const HTTP_USER: &str = "bot";
pub const TOKEN: &str = "t0ken-for-tests-never-printed";

/// Every server, and what a test needs to reach them.
pub struct Servers {
    /// Where everything lives.
    pub dir: PathBuf,
    /// The served repositories (`<name>.git`).
    pub srv: PathBuf,
    pub sshd_port: u16,
    /// The sshd's public host key, `ssh-ed25519 AAAA…`.
    pub host_key: String,
    /// Its fingerprint, `SHA256:…`.
    pub host_fingerprint: String,
    /// A private key the sshd accepts for [`SSH_USER`].
    pub client_key: PathBuf,
    /// TLS with a certificate for 127.0.0.1 and localhost from [`Servers::ca`].
    pub https_port: u16,
    /// TLS with a certificate for `other.example` only.
    pub other_name_port: u16,
    /// TLS with a certificate that expired in 2020.
    pub expired_port: u16,
    /// Plain http.
    pub http_port: u16,
    /// The CA of the certificates.
    pub ca: PathBuf,
    /// Accepts connections (the kernel does) and never answers.
    pub silent_port: u16,
    _silent: TcpListener,
    /// The pipe the keeper waits on: closed when this process ends.
    _keeper: ChildStdin,
    /// The servers, ended by the keeper.
    _children: Vec<Child>,
}

/// The servers, started at the first call; `None`, after saying so loudly, where their programs
/// are not installed (`scripts/test.sh` installs them) or this is not root.
pub fn servers() -> Option<&'static Servers> {
    static SERVERS: OnceLock<Option<Servers>> = OnceLock::new();
    SERVERS.get_or_init(start).as_ref()
}

fn start() -> Option<Servers> {
    let missing: Vec<&str> = ["/usr/sbin/sshd", "/usr/sbin/nginx", "/usr/sbin/fcgiwrap"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    let root = nix::unistd::geteuid().is_root();
    // The tests' processes see the test's home as /root in a mount namespace of their own.
    let namespaces = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !missing.is_empty() || !root || !namespaces {
        eprintln!(
            "\n!!! SKIPPED: the remote git tests need root, mount namespaces (unshare) and \
             openssh-server, nginx and fcgiwrap (scripts/test.sh installs them); missing: \
             {missing:?}, root: {root}, namespaces: {namespaces} !!!\n"
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("shoal-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["srv", "ssh", "tls", "nginx"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let (keeper, keeper_process) = keeper(&dir);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();

    // sshd
    let ssh = dir.join("ssh");
    keygen(&ssh.join("host"));
    keygen(&ssh.join("client"));
    std::fs::copy(
        ssh.join("client.pub"),
        ssh.join(format!("authorized_keys_{SSH_USER}")),
    )
    .unwrap();
    let host_key = public_key(&ssh.join("host.pub"));
    let host_fingerprint = fingerprint(&ssh.join("host.pub"));
    let sshd_port = free_port();
    std::fs::write(
        ssh.join("sshd_config"),
        format!(
            "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
             AuthorizedKeysFile {ssh}/authorized_keys_%u\nStrictModes no\nUsePAM no\n\
             PidFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
            host = ssh.join("host").display(),
            ssh = ssh.display()
        ),
    )
    .unwrap();
    // sshd's privilege separation directory, as the openssh-server service makes it.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let servers_log = |name: &str| std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let sshd = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(ssh.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(servers_log("sshd"))
        .stderr(servers_log("sshd"))
        .spawn()
        .unwrap();
    keep_pid(&dir, sshd.id());

    // certificates
    let tls = dir.join("tls");
    let ca = certs::make(&tls);

    // nginx + fcgiwrap + git http-backend
    let fcgi_socket = dir.join("fcgi.sock");
    let fcgiwrap = Command::new("/usr/sbin/fcgiwrap")
        .arg("-s")
        .arg(format!("unix:{}", fcgi_socket.display()))
        .stdin(Stdio::null())
        .stdout(servers_log("fcgiwrap"))
        .stderr(servers_log("fcgiwrap"))
        .spawn()
        .unwrap();
    keep_pid(&dir, fcgiwrap.id());
    let htpasswd = dir.join("nginx/htpasswd");
    let hashed = stdout(Command::new("openssl").args(["passwd", "-apr1", TOKEN]));
    std::fs::write(&htpasswd, format!("{HTTP_USER}:{}", hashed.trim())).unwrap();
    let backend = format!(
        "{}/git-http-backend",
        stdout(Command::new("git").arg("--exec-path")).trim()
    );
    let srv = dir.join("srv");
    let git = |path_info: &str| {
        format!(
            "include /etc/nginx/fastcgi_params;\n\
             fastcgi_param SCRIPT_FILENAME {backend};\n\
             fastcgi_param GIT_PROJECT_ROOT {srv};\n\
             fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
             fastcgi_param GIT_PROTOCOL $http_git_protocol;\n\
             fastcgi_param REMOTE_USER $remote_user;\n\
             fastcgi_param PATH_INFO {path_info};\n\
             fastcgi_pass unix:{socket};\n",
            srv = srv.display(),
            socket = fcgi_socket.display()
        )
    };
    let locations = format!(
        "location ~ ^/private(/.*)$ {{ auth_basic git; auth_basic_user_file {htpasswd}; {private} }}\n\
         location / {{ {public} }}\n",
        htpasswd = htpasswd.display(),
        private = git("$1"),
        public = git("$uri"),
    );
    let (https_port, other_name_port, expired_port, http_port) =
        (free_port(), free_port(), free_port(), free_port());
    let nginx_dir = dir.join("nginx");
    let access_log = nginx_dir.join("access.log");
    let tls_server = |port: u16, cert: &str| {
        format!(
            "server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; \
             ssl_certificate_key {key};\n{locations}}}\n",
            cert = tls.join(cert).display(),
            key = tls.join("server.key").display(),
        )
    };
    let temp = |name: &str| format!("{name}_temp_path {};\n", nginx_dir.join(name).display());
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\n\
             error_log {errors} info;\nevents {{ worker_connections 256; }}\n\
             http {{\nlog_format bytes '$request_length $bytes_sent $status $request';\n\
             access_log {access} bytes;\n{body}{fastcgi}{proxy}{uwsgi}{scgi}\
             {main}{other}{expired}\
             server {{ listen 127.0.0.1:{http_port};\n{locations}}}\n}}\n",
            pid = nginx_dir.join("nginx.pid").display(),
            errors = nginx_dir.join("error.log").display(),
            access = access_log.display(),
            body = temp("client_body"),
            fastcgi = temp("fastcgi"),
            proxy = temp("proxy"),
            uwsgi = temp("uwsgi"),
            scgi = temp("scgi"),
            main = tls_server(https_port, "local.pem"),
            other = tls_server(other_name_port, "other.pem"),
            expired = tls_server(expired_port, "expired.pem"),
        ),
    )
    .unwrap();
    let nginx = Command::new("/usr/sbin/nginx")
        .arg("-p")
        .arg(&nginx_dir)
        .arg("-c")
        .arg(nginx_dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(servers_log("nginx"))
        .stderr(servers_log("nginx"))
        .spawn()
        .unwrap();
    keep_pid(&dir, nginx.id());

    for (name, port) in [
        ("sshd", sshd_port),
        ("nginx", https_port),
        ("nginx", http_port),
    ] {
        poll_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} does not listen on {port}:\n{}",
                std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
            )
        });
    }
    poll_until(Duration::from_secs(10), || {
        fcgi_socket.exists().then_some(())
    })
    .expect("fcgiwrap listens");
    Some(Servers {
        srv,
        sshd_port,
        host_key,
        host_fingerprint,
        client_key: ssh.join("client"),
        https_port,
        other_name_port,
        expired_port,
        http_port,
        ca,
        silent_port,
        _silent: silent,
        _keeper: keeper,
        _children: vec![keeper_process, sshd, fcgiwrap, nginx],
        dir,
    })
}

impl Servers {
    /// A bare copy of `repo` served by every server as `<name>-<n>.git`; returns that name.
    pub fn serve(&self, repo: &Path, name: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        stdout(
            clean("git", &self.dir)
                .args(["clone", "-q", "--bare"])
                .arg(repo)
                .arg(self.srv.join(format!("{name}.git"))),
        );
        name
    }

    /// The bare repository behind `name`.
    pub fn served(&self, name: &str) -> PathBuf {
        self.srv.join(format!("{name}.git"))
    }

    pub fn ssh_url(&self, user: &str, name: &str) -> String {
        format!(
            "ssh://{user}@127.0.0.1:{}{}",
            self.sshd_port,
            self.served(name).display()
        )
    }

    pub fn https_url(&self, port: u16, host: &str, name: &str) -> String {
        format!("https://{host}:{port}/{name}.git")
    }

    /// The `known_hosts` line of the sshd.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.sshd_port, self.host_key)
    }
}

/// A free port of 127.0.0.1, as the kernel hands it out.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ssh-keygen` an ed25519 key without a passphrase at `path`.
pub fn keygen(path: &Path) {
    stdout(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "shoal-test", "-f"])
            .arg(path),
    );
}

/// `ssh-ed25519 AAAA…` of a public key file.
pub fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `SHA256:…` of a key file.
pub fn fingerprint(path: &Path) -> String {
    let out = stdout(Command::new("ssh-keygen").arg("-lf").arg(path));
    out.split_whitespace().nth(1).unwrap().to_owned()
}

/// The keeper: `sh` waiting for the end of its stdin, then killing every pid listed in
/// `<dir>/pids` and removing `dir`.
fn keeper(dir: &Path) -> (ChildStdin, Child) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(
            "cat > /dev/null; for p in $(cat \"$0/pids\" 2>/dev/null); do kill \"$p\" 2>/dev/null; done; rm -rf \"$0\"",
        )
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child.stdin.take().unwrap(), child)
}

/// Adds `pid` to what the keeper kills.
fn keep_pid(dir: &Path, pid: u32) {
    let mut pids = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pids"))
        .unwrap();
    writeln!(pids, "{pid}").unwrap();
}
