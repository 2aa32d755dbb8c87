//! `shoal hello-server` (hidden): the tiny static HTTP server of `examples/hello-app`, so the
//! example and `shoal demo` run on any host that has shoal, with no language runtime. GET and
//! HEAD of files under `--root` (`/` is `index.html`); nothing else.

use std::fs;
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::exit;

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The directory to serve.
    #[arg(long)]
    root: PathBuf,
    /// Where to listen (port 0 picks a free one; see --port-file).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Write the port listened on to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Write this process's id to this file once listening.
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> u8 {
    if !args.root.is_dir() {
        errln!(
            "error: --root {}: not a directory to serve",
            args.root.display()
        );
        return exit::USAGE;
    }
    let listener = match TcpListener::bind(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            errln!("error: cannot listen on {}: {e}", args.listen);
            return exit::FAILURE;
        }
    };
    let port = listener.local_addr().map_or(0, |a| a.port());
    let files = [
        (args.pid_file.as_deref(), std::process::id().to_string()),
        (args.port_file.as_deref(), port.to_string()),
    ];
    for (path, text) in files {
        if let Some(path) = path
            && let Err(e) = crate::execute::layout::write_atomically(path, text.as_bytes())
        {
            errln!("error: cannot write {}: {e}", path.display());
            return exit::FAILURE;
        }
    }
    errln!(
        "serving {} on http://127.0.0.1:{port}/",
        args.root.display()
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let root = args.root.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &root) {
                errln!("request failed: {e}");
            }
        });
    }
    exit::OK
}

/// Answers one request on `stream`, then closes it.
fn serve(stream: TcpStream, root: &Path) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = Vec::new();
    let mut line = String::new();
    while head.len() < MAX_HEAD {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        head.push(line.clone());
    }
    let first = head.first().map(String::as_str).unwrap_or_default();
    let mut words = first.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match method {
        "GET" | "HEAD" => match file_for(root, target).and_then(|p| fs::read(&p).ok().zip(Some(p)))
        {
            Some((body, path)) => ("200 OK", content_type(&path), body),
            None => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        },
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"GET or HEAD only\n".to_vec(),
        ),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

/// The file under `root` a request target names: no `..`, no query, `/` is `index.html`.
fn file_for(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?.strip_prefix('/')?;
    let relative = Path::new(if path.is_empty() { "index.html" } else { path });
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let full = root.join(relative);
    let full = if full.is_dir() {
        full.join("index.html")
    } else {
        full
    };
    full.is_file().then_some(full)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_files_under_the_root_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::write(root.join("index.html"), "hi").expect("write");
        fs::write(root.join("health"), "ok").expect("write");
        fs::create_dir(root.join("docs")).expect("mkdir");
        fs::write(root.join("docs/index.html"), "docs").expect("write");

        assert_eq!(file_for(root, "/"), Some(root.join("index.html")));
        assert_eq!(file_for(root, "/health?x=1"), Some(root.join("health")));
        assert_eq!(file_for(root, "/docs"), Some(root.join("docs/index.html")));
        assert_eq!(file_for(root, "/../etc/passwd"), None);
        assert_eq!(file_for(root, "/docs/../health"), None);
        assert_eq!(file_for(root, "/missing"), None);
        assert_eq!(file_for(root, "health"), None, "targets start with /");
    }
}
