//! Counts HTTP/1.1 requests in the client-to-server byte stream of one connection, parsing just
//! enough to find where each request head starts: keep-alive and pipelined requests count one
//! each, and a body announced by `Content-Length` is skipped so bytes inside it never count.

/// A head longer than this is not HTTP (or not worth following): counting stops.
const MAX_HEAD: usize = 64 * 1024;

/// The request methods that start a head.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// The parse state of one connection's upstream direction.
#[derive(Debug, Default)]
pub(crate) struct RequestCounter {
    state: State,
    /// Bytes received and not yet consumed by the state.
    pending: Vec<u8>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    /// Reading a request head, up to its blank line.
    #[default]
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Not HTTP, a chunked body (whose end is not tracked), or a head past [`MAX_HEAD`]: the
    /// rest of the connection counts no requests.
    Opaque,
}

impl RequestCounter {
    /// Takes the next bytes sent upstream; returns how many request heads they completed.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> u64 {
        if self.state == State::Opaque {
            return 0;
        }
        self.pending.extend_from_slice(bytes);
        let mut completed = 0;
        loop {
            match self.state {
                State::Opaque => {
                    self.pending = Vec::new();
                    return completed;
                }
                State::Body(left) => {
                    let skip = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.pending.len());
                    self.pending.drain(..skip);
                    self.state = match left - skip as u64 {
                        0 => State::Head,
                        left => State::Body(left),
                    };
                    if self.pending.is_empty() {
                        return completed;
                    }
                }
                State::Head => {
                    if !could_start_request(&self.pending) {
                        self.state = State::Opaque;
                        continue;
                    }
                    let Some(at) = find(&self.pending, b"\r\n\r\n") else {
                        if self.pending.len() > MAX_HEAD {
                            self.state = State::Opaque;
                        }
                        return completed;
                    };
                    let head: Vec<u8> = self.pending.drain(..at + 4).collect();
                    completed += 1;
                    self.state = body_after(&String::from_utf8_lossy(&head));
                    if self.pending.is_empty() {
                        return completed;
                    }
                }
            }
        }
    }
}

/// Whether `bytes` is, or could grow into, `METHOD ` at the start of a request line.
fn could_start_request(bytes: &[u8]) -> bool {
    METHODS.iter().any(|method| {
        let token = format!("{method} ");
        let n = bytes.len().min(token.len());
        bytes[..n] == token.as_bytes()[..n]
    })
}

/// What follows a complete head: its `Content-Length` body, nothing, or (chunked) the unknown.
fn body_after(head: &str) -> State {
    let mut length = 0;
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            return State::Opaque;
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        }
    }
    match length {
        0 => State::Head,
        length => State::Body(length),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(pieces: &[&[u8]]) -> u64 {
        let mut counter = RequestCounter::default();
        pieces.iter().map(|piece| counter.feed(piece)).sum()
    }

    #[test]
    fn pipelined_requests_in_one_read_count_one_each() {
        let two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(count(&[two]), 2);
    }

    #[test]
    fn a_head_split_byte_by_byte_counts_once() {
        let head = b"GET /bucket?list-type=2 HTTP/1.1\r\nHost: x\r\n\r\n";
        let pieces: Vec<&[u8]> = head.chunks(1).collect();
        assert_eq!(count(&pieces), 1);
    }

    #[test]
    fn a_put_body_that_looks_like_a_request_is_skipped() {
        let put = b"PUT /b/k HTTP/1.1\r\ncontent-length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let get = b"GET /b/k HTTP/1.1\r\n\r\n";
        assert_eq!(count(&[&put[..30], &put[30..], get]), 2);
    }

    #[test]
    fn git_protocol_is_not_http_and_counts_nothing() {
        let git = b"0032git-upload-pack /repo.git\0host=127.0.0.1\0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(count(&[git]), 0);
    }

    #[test]
    fn a_chunked_body_stops_counting_after_its_request() {
        let put = b"PUT /b/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(count(&[put, b"GET / HTTP/1.1\r\n\r\n"]), 1);
    }
}
