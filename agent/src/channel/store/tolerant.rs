//! LIST replies that tolerate object names object_store cannot read. object_store turns a whole
//! S3 (or GCS) LIST reply into paths at once, so one key such as `prefix//x`, `prefix/../x` or
//! one with a control character fails the whole listing, and with it every poll and every
//! `shoal release` of the channel. [`TolerantConnector`] wraps object_store's HTTP client and
//! takes such entries out of each LIST reply before object_store reads it; the names it drops
//! are kept in an [`Unreadable`] for the channel to report.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService, ReqwestConnector,
};
use object_store::path::Path as ObjPath;
use quick_xml::events::Event;
use quick_xml::{Reader, Writer};

/// Entries of a LIST reply (S3 `ListObjectsV2`, also GCS's XML API) and the child that holds
/// each one's name.
const ENTRIES: [(&[u8], &[u8]); 2] = [(b"Contents", b"Key"), (b"CommonPrefixes", b"Prefix")];

/// Object names the store listed that object_store cannot read, as the store sent them.
#[derive(Debug, Clone, Default)]
pub struct Unreadable(Arc<Mutex<Vec<String>>>);

impl Unreadable {
    /// The names collected since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn add(&self, names: Vec<String>) {
        if !names.is_empty() {
            let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            held.extend(names);
        }
    }
}

/// object_store's own reqwest client, with unreadable entries taken out of LIST replies.
#[derive(Debug, Default)]
pub struct TolerantConnector {
    unreadable: Unreadable,
}

impl TolerantConnector {
    /// A connector that records what it drops in `unreadable`.
    pub fn new(unreadable: Unreadable) -> Self {
        Self { unreadable }
    }
}

impl HttpConnector for TolerantConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(TolerantService {
            inner,
            unreadable: self.unreadable.clone(),
        }))
    }
}

#[derive(Debug)]
struct TolerantService {
    inner: HttpClient,
    unreadable: Unreadable,
}

type Reply<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

impl HttpService for TolerantService {
    fn call<'s, 'a>(&'s self, req: HttpRequest) -> Reply<'a>
    where
        's: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let is_list = req.method() == "GET"
                && req
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p == "list-type=2"));
            let response = self.inner.execute(req).await?;
            if !is_list || !response.status().is_success() {
                return Ok(response);
            }
            let (mut parts, body) = response.into_parts();
            let bytes = body.bytes().await?;
            let (kept, dropped) =
                filter_listing(&bytes).map_err(|e| HttpError::new(HttpErrorKind::Decode, e))?;
            if !dropped.is_empty() {
                tracing::debug!(
                    count = dropped.len(),
                    "unreadable names left out of a listing"
                );
            }
            self.unreadable.add(dropped);
            parts.headers.remove("content-length");
            Ok(HttpResponse::from_parts(
                parts,
                HttpResponseBody::from(kept),
            ))
        })
    }
}

/// Takes the entries whose name object_store cannot read out of a LIST reply: returns the
/// reply without them, byte for byte otherwise, and the names taken out.
pub fn filter_listing(xml: &[u8]) -> Result<(Vec<u8>, Vec<String>), quick_xml::Error> {
    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    let mut dropped = Vec::new();
    let mut depth = 0usize;
    let mut entry: Option<Entry> = None;
    loop {
        let event = reader.read_event()?;
        if matches!(event, Event::Eof) {
            break;
        }
        if let Some(open) = entry.as_mut() {
            let done = open.read(&event);
            open.events.push(event.into_owned());
            if done && let Some(open) = entry.take() {
                if open.name_is_readable() {
                    for event in open.events {
                        writer.write_event(event)?;
                    }
                } else {
                    dropped.push(open.name);
                }
            }
            continue;
        }
        match &event {
            Event::Start(start) => {
                let key = ENTRIES
                    .iter()
                    .find(|(tag, _)| depth == 1 && start.local_name().as_ref() == *tag)
                    .map(|(_, key)| *key);
                if let Some(key) = key {
                    // Read whole, up to and with its end: the depth outside it is unchanged.
                    entry = Some(Entry::new(key, event.into_owned()));
                    continue;
                }
                depth += 1;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        writer.write_event(event)?;
    }
    Ok((writer.into_inner(), dropped))
}

/// One `Contents` or `CommonPrefixes` element while it is read.
struct Entry {
    key: &'static [u8],
    events: Vec<Event<'static>>,
    depth: usize,
    in_key: bool,
    name: String,
    /// An entity in the name that could not be resolved.
    undecodable: bool,
}

impl Entry {
    fn new(key: &'static [u8], start: Event<'static>) -> Self {
        Self {
            key,
            events: vec![start],
            depth: 1,
            in_key: false,
            name: String::new(),
            undecodable: false,
        }
    }

    /// Takes in one event inside the entry; true once the entry's end is read.
    fn read(&mut self, event: &Event<'_>) -> bool {
        match event {
            Event::Start(start) => {
                self.in_key = self.depth == 1 && start.local_name().as_ref() == self.key;
                self.depth += 1;
            }
            Event::End(_) => {
                self.in_key = false;
                self.depth -= 1;
                return self.depth == 0;
            }
            Event::Text(text) if self.in_key => match text.decode() {
                Ok(s) => self.name.push_str(&s),
                Err(_) => self.undecodable = true,
            },
            Event::CData(text) if self.in_key => match text.decode() {
                Ok(s) => self.name.push_str(&s),
                Err(_) => self.undecodable = true,
            },
            Event::GeneralRef(entity) if self.in_key => {
                let resolved = match entity.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => entity.decode().ok().and_then(|name| {
                        quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                    }),
                    Err(_) => None,
                };
                match resolved {
                    Some(s) => self.name.push_str(&s),
                    None => self.undecodable = true,
                }
            }
            _ => {}
        }
        false
    }

    /// Whether object_store can read the entry's name.
    fn name_is_readable(&self) -> bool {
        !self.undecodable && ObjPath::parse(&self.name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &str = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
        "<Name>b</Name><Prefix>apps/</Prefix>",
        "<Contents><Key>apps/a&amp;b</Key><Size>1</Size></Contents>",
        "<Contents><Key>apps//x</Key><Size>1</Size></Contents>",
        "<Contents><Key>apps/&#x1B;]0;t&#7;</Key><Size>1</Size></Contents>",
        "<CommonPrefixes><Prefix>apps/v1.0.0/</Prefix></CommonPrefixes>",
        "<CommonPrefixes><Prefix>apps/../</Prefix></CommonPrefixes>",
        "<CommonPrefixes><Prefix>apps/\u{1b}x/</Prefix></CommonPrefixes>",
        "<NextContinuationToken>t&amp;1</NextContinuationToken>",
        "</ListBucketResult>"
    );

    #[test]
    fn unreadable_entries_are_taken_out_and_the_rest_kept_verbatim() {
        let (kept, dropped) = filter_listing(REPLY.as_bytes()).expect("well-formed");
        assert_eq!(
            dropped,
            [
                "apps//x",
                "apps/\u{1b}]0;t\u{7}",
                "apps/../",
                "apps/\u{1b}x/"
            ]
        );
        let kept = String::from_utf8(kept).expect("utf-8");
        let expected = concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
            "<Name>b</Name><Prefix>apps/</Prefix>",
            "<Contents><Key>apps/a&amp;b</Key><Size>1</Size></Contents>",
            "<CommonPrefixes><Prefix>apps/v1.0.0/</Prefix></CommonPrefixes>",
            "<NextContinuationToken>t&amp;1</NextContinuationToken>",
            "</ListBucketResult>"
        );
        assert_eq!(kept, expected);
    }

    #[test]
    fn a_reply_with_nothing_to_take_out_is_unchanged() {
        let reply = "<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>";
        let (kept, dropped) = filter_listing(reply.as_bytes()).expect("well-formed");
        assert_eq!(kept, reply.as_bytes());
        assert!(dropped.is_empty());
    }
}
