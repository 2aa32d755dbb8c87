//! A real headless Chromium (Debian's `chromium`) holding one page open, driven over the
//! DevTools protocol by `tests/fixtures/browser/cdp_pipe.py`: open a URL once, then evaluate
//! expressions in the page as it lives on (its own scripts keep running between calls) and
//! take screenshots. Nothing reloads the page but the page itself.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{fixture, poll_until};

/// One browser with one page.
pub struct Browser {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Browser {
    /// Starts Chromium with a `width`×`height` window; panics when it cannot.
    pub fn start(width: u32, height: u32) -> Browser {
        let mut child = Command::new("python3")
            .arg(fixture("browser/cdp_pipe.py"))
            .arg(width.to_string())
            .arg(height.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the browser driver");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Browser {
            child,
            input,
            output,
        }
    }

    fn ask(&mut self, command: &Value) -> Result<Value, String> {
        writeln!(self.input, "{command}").map_err(|e| format!("driver gone: {e}"))?;
        self.input
            .flush()
            .map_err(|e| format!("driver gone: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("driver gone: {e}"))?;
        let answer: Value =
            serde_json::from_str(&line).map_err(|e| format!("bad answer {line:?}: {e}"))?;
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or("no answer").to_owned())
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn open(&mut self, url: &str) {
        if let Err(e) = self.ask(&json!({"cmd": "open", "url": url})) {
            panic!("cannot open {url}: {e}");
        }
    }

    /// The value of the JavaScript `expr` in the page now (JSON-serialisable results only).
    pub fn eval(&mut self, expr: &str) -> Value {
        self.ask(&json!({"cmd": "eval", "expr": expr}))
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// Evaluates `expr` until it is truthy (within `timeout`), and returns that value.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, expr: &str) -> Value {
        let seen = poll_until(timeout, || {
            let value = self.eval(expr);
            let truthy = !(value.is_null()
                || value == false
                || value == ""
                || value == 0
                || value.as_array().is_some_and(Vec::is_empty));
            truthy.then_some(value)
        });
        seen.unwrap_or_else(|| {
            let text = self.eval("document.body ? document.body.innerText : ''");
            panic!("the page never showed {what} ({expr}); it shows:\n{text}")
        })
    }

    /// Writes a PNG of the whole page to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let command = json!({"cmd": "shot", "path": path});
        if let Err(e) = self.ask(&command) {
            panic!("cannot take a screenshot into {}: {e}", path.display());
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "{}", json!({"cmd": "quit"}));
        let _ = self.input.flush();
        let stopped = poll_until(Duration::from_secs(15), || {
            self.child.try_wait().ok().flatten()
        });
        if stopped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
