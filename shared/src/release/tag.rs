//! Signed git tags: splitting a raw tag object into the signed payload and its signature, as
//! git does, and refusing tags that are not SSH-signed, each for its own reason.
//!
//! The payload is every byte before the start of the last line that begins with a signature
//! marker; the rest is the armored signature (git's `parse_signed_buffer`).

/// Signature markers git recognises at the start of a line, and what they are.
const MARKERS: [(&str, Kind); 4] = [
    ("-----BEGIN SSH SIGNATURE-----", Kind::Ssh),
    ("-----BEGIN PGP SIGNATURE-----", Kind::Pgp),
    ("-----BEGIN PGP MESSAGE-----", Kind::Pgp),
    ("-----BEGIN SIGNED MESSAGE-----", Kind::X509),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ssh,
    Pgp,
    X509,
}

/// An SSH-signed annotated tag, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTag<'a> {
    /// The id of the tagged object (`object` header).
    pub object: String,
    /// The type of the tagged object (`type` header), normally `commit`.
    pub object_type: String,
    /// The tag's name as recorded in the object (`tag` header).
    pub name: String,
    /// The tagger's timestamp (seconds since the Unix epoch), the time git checks key
    /// validity at; `None` when the tag has no tagger line.
    pub tagger_time: Option<i64>,
    /// The bytes the signature covers.
    pub payload: &'a [u8],
    /// The tag's message: the payload after the headers and the blank line (signed too).
    pub message: &'a [u8],
    /// The armored SSH signature.
    pub signature: &'a [u8],
}

/// Why a tag is not an SSH-signed annotated tag. Each case has its own reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The ref points straight at a commit: there is no tag object to carry a signature.
    #[error(
        "`{name}` is a lightweight tag: it has no tag object and so no signature; make releases with `git tag -s`"
    )]
    Lightweight {
        /// The tag's name.
        name: String,
    },
    /// An annotated tag without a signature.
    #[error("tag `{name}` is not signed; make releases with `git tag -s` and `gpg.format=ssh`")]
    Unsigned {
        /// The tag's name.
        name: String,
    },
    /// Signed with OpenPGP.
    #[error(
        "tag `{name}` is signed with OpenPGP; shoal trusts SSH signatures only (`git config gpg.format ssh`)"
    )]
    PgpSigned {
        /// The tag's name.
        name: String,
    },
    /// Signed with X.509 (gpgsm).
    #[error(
        "tag `{name}` is signed with X.509; shoal trusts SSH signatures only (`git config gpg.format ssh`)"
    )]
    X509Signed {
        /// The tag's name.
        name: String,
    },
    /// The object is not a well-formed tag.
    #[error("tag `{name}` is not a well-formed tag object ({reason})")]
    Malformed {
        /// The tag's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl TagError {
    /// A stable name for status JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Lightweight { .. } => "lightweight_tag",
            Self::Unsigned { .. } => "unsigned_tag",
            Self::PgpSigned { .. } => "pgp_signed_tag",
            Self::X509Signed { .. } => "x509_signed_tag",
            Self::Malformed { .. } => "malformed_tag",
        }
    }
}

/// Splits the raw tag object of the tag `name` into its headers, payload and SSH signature.
pub fn split_signed_tag<'a>(name: &str, raw: &'a [u8]) -> Result<SignedTag<'a>, TagError> {
    let malformed = |reason: &str| TagError::Malformed {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let mut last: Option<(usize, Kind)> = None;
    let mut start = 0;
    while start < raw.len() {
        let line = &raw[start..];
        if let Some((_, kind)) = MARKERS.iter().find(|(m, _)| line.starts_with(m.as_bytes())) {
            last = Some((start, *kind));
        }
        start += line
            .iter()
            .position(|&b| b == b'\n')
            .map_or(line.len(), |i| i + 1);
    }
    let (at, kind) = match last {
        None => {
            return Err(TagError::Unsigned {
                name: name.to_owned(),
            });
        }
        Some((_, Kind::Pgp)) => {
            return Err(TagError::PgpSigned {
                name: name.to_owned(),
            });
        }
        Some((_, Kind::X509)) => {
            return Err(TagError::X509Signed {
                name: name.to_owned(),
            });
        }
        Some(found) => found,
    };
    debug_assert_eq!(kind, Kind::Ssh);
    let (payload, signature) = raw.split_at(at);

    let headers_end =
        find(payload, b"\n\n").ok_or_else(|| malformed("no blank line after the headers"))?;
    let headers = std::str::from_utf8(&payload[..headers_end])
        .map_err(|_| malformed("headers are not UTF-8"))?;
    let mut object = None;
    let mut object_type = None;
    let mut tag_name = None;
    let mut tagger_time = None;
    for line in headers.lines() {
        match line.split_once(' ') {
            Some(("object", v)) => object = Some(v.to_owned()),
            Some(("type", v)) => object_type = Some(v.to_owned()),
            Some(("tag", v)) => tag_name = Some(v.to_owned()),
            Some(("tagger", v)) => tagger_time = tagger_timestamp(v),
            _ => {}
        }
    }
    Ok(SignedTag {
        object: object.ok_or_else(|| malformed("no `object` header"))?,
        object_type: object_type.ok_or_else(|| malformed("no `type` header"))?,
        name: tag_name.ok_or_else(|| malformed("no `tag` header"))?,
        tagger_time,
        payload,
        message: &payload[headers_end + 2..],
        signature,
    })
}

/// `Name <email> 1795291060 +0000` → 1795291060.
fn tagger_timestamp(value: &str) -> Option<i64> {
    let after_email = &value[value.rfind('>')? + 1..];
    after_email.split_whitespace().next()?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "object 0123456789abcdef0123456789abcdef01234567\ntype commit\ntag v1.0.0\ntagger Release Bot <release@example> 1795291060 +0000\n\nrelease v1.0.0\n";

    #[test]
    fn splits_at_the_last_signature_line() {
        let sig = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n";
        // A marker quoted inside the message is not the signature: the last one is.
        let message = "-----BEGIN SSH SIGNATURE----- quoted in the notes\n";
        let raw = format!("{HEAD}{message}{sig}");
        let tag = split_signed_tag("v1.0.0", raw.as_bytes()).expect("splits");
        assert_eq!(tag.payload, format!("{HEAD}{message}").as_bytes());
        assert_eq!(tag.message, format!("release v1.0.0\n{message}").as_bytes());
        assert_eq!(tag.signature, sig.as_bytes());
        assert_eq!(tag.object, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(tag.object_type, "commit");
        assert_eq!(tag.name, "v1.0.0");
        assert_eq!(tag.tagger_time, Some(1_795_291_060));
    }

    #[test]
    fn refuses_each_unsupported_kind_by_name() {
        let unsigned = split_signed_tag("v1", HEAD.as_bytes()).expect_err("unsigned");
        assert_eq!(unsigned.kind(), "unsigned_tag");
        let pgp = format!("{HEAD}-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n");
        assert_eq!(
            split_signed_tag("v1", pgp.as_bytes())
                .expect_err("pgp")
                .kind(),
            "pgp_signed_tag"
        );
        let x509 = format!("{HEAD}-----BEGIN SIGNED MESSAGE-----\nxx\n");
        assert_eq!(
            split_signed_tag("v1", x509.as_bytes())
                .expect_err("x509")
                .kind(),
            "x509_signed_tag"
        );
        // An SSH signature followed by a PGP one: the last marker decides.
        let both =
            format!("{HEAD}-----BEGIN SSH SIGNATURE-----\nxx\n-----BEGIN PGP SIGNATURE-----\nyy\n");
        assert_eq!(
            split_signed_tag("v1", both.as_bytes())
                .expect_err("pgp")
                .kind(),
            "pgp_signed_tag"
        );
    }

    #[test]
    fn malformed_objects_are_refused_not_panicked_on() {
        for raw in [
            "-----BEGIN SSH SIGNATURE-----\n",
            "type commit\n\nmsg\n-----BEGIN SSH SIGNATURE-----\n",
            "",
        ] {
            let err = split_signed_tag("v1", raw.as_bytes()).expect_err(raw);
            assert!(
                matches!(err, TagError::Malformed { .. } | TagError::Unsigned { .. }),
                "{raw}: {err}"
            );
        }
    }
}
