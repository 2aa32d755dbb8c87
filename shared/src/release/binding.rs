//! What a release is for: the application it is bound to, inside the bytes its signature
//! covers, so that a release signed for one application never installs on another that trusts
//! the same key (cross-channel replay).
//!
//! The word is the same everywhere: a group's `application:` in the agent config (its name
//! when unset), `application: web` in a store release's `release.yaml`, and a
//! `Shoal-Application: web` trailer line in the message of a signed git tag.

/// The trailer key of a git tag's message that names the application.
pub const TRAILER_KEY: &str = "Shoal-Application";

/// The longest application name, in bytes.
pub const MAX_APPLICATION_LEN: usize = 128;

/// Why a tag message names no single application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// No `Shoal-Application:` line.
    #[error("no `{TRAILER_KEY}:` line in its signed message")]
    Missing,
    /// More than one `Shoal-Application:` line: which one counts would be a guess.
    #[error("{count} `{TRAILER_KEY}:` lines in its signed message; a release names exactly one")]
    Repeated {
        /// How many there are.
        count: usize,
    },
    /// The line's value is not UTF-8.
    #[error("its `{TRAILER_KEY}:` line is not UTF-8")]
    NotUtf8,
    /// The line's value is not an application name.
    #[error("its `{TRAILER_KEY}:` line {reason}")]
    Invalid {
        /// What is wrong with the value.
        reason: ApplicationNameError,
    },
}

/// Why a name cannot be an application's. The sentence follows the key or line the name came
/// from: "application: must not be empty".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationNameError {
    /// Nothing is written.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_APPLICATION_LEN`].
    #[error("is longer than {MAX_APPLICATION_LEN} bytes; use a shorter name")]
    TooLong,
    /// A control character (a newline, an escape) is in it.
    #[error("`{}` holds a control character; use letters, digits, `-`, `_` and `.`", name.escape_debug())]
    ControlCharacter {
        /// The name as written.
        name: String,
    },
    /// It starts or ends with white space.
    #[error("`{name}` starts or ends with a space; write the name without it")]
    Spaces {
        /// The name as written.
        name: String,
    },
}

/// Checks an application name as a config, a manifest or a trailer gives it.
pub fn check_application(name: &str) -> Result<(), ApplicationNameError> {
    if name.is_empty() {
        return Err(ApplicationNameError::Empty);
    }
    if name.len() > MAX_APPLICATION_LEN {
        return Err(ApplicationNameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(ApplicationNameError::ControlCharacter {
            name: name.to_owned(),
        });
    }
    if name.trim() != name {
        return Err(ApplicationNameError::Spaces {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The application the message of a signed tag names: its one line `Shoal-Application: NAME`
/// (the key in any case, like git's trailers; spaces around the value dropped). Exactly one
/// such line counts, wherever it is; `git tag -s TAG -m "release" -m "Shoal-Application: web"`
/// writes it as the last paragraph, where git's own trailers go.
pub fn tag_application(message: &[u8]) -> Result<String, BindingError> {
    let key = TRAILER_KEY.as_bytes();
    let mut found = Vec::new();
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > key.len()
            && line[..key.len()].eq_ignore_ascii_case(key)
            && line[key.len()] == b':'
        {
            found.push(&line[key.len() + 1..]);
        }
    }
    match found.as_slice() {
        [] => Err(BindingError::Missing),
        [value] => {
            let value = std::str::from_utf8(value).map_err(|_| BindingError::NotUtf8)?;
            let value = value.trim_matches([' ', '\t']);
            check_application(value).map_err(|reason| BindingError::Invalid { reason })?;
            Ok(value.to_owned())
        }
        many => Err(BindingError::Repeated { count: many.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_one_trailer_line() {
        let message = b"release 1.4.0\n\nShoal-Application: web\n";
        assert_eq!(tag_application(message), Ok("web".to_owned()));
        // The key in any case, spaces and a CR around the value.
        let message = b"release\n\nshoal-application:\t shop.front \r\n";
        assert_eq!(tag_application(message), Ok("shop.front".to_owned()));
    }

    #[test]
    fn refuses_none_two_or_an_empty_one() {
        assert_eq!(
            tag_application(b"release 1.4.0\n"),
            Err(BindingError::Missing)
        );
        // Mentioned, not a line of its own: not a binding.
        assert_eq!(
            tag_application(b"see Shoal-Application: web\n"),
            Err(BindingError::Missing)
        );
        assert_eq!(
            tag_application(b"Shoal-Application-X: web\n"),
            Err(BindingError::Missing)
        );
        let two = b"Shoal-Application: web\n\nShoal-Application: api\n";
        assert_eq!(
            tag_application(two),
            Err(BindingError::Repeated { count: 2 })
        );
        let same_twice = b"Shoal-Application: web\nShoal-Application: web\n";
        assert!(matches!(
            tag_application(same_twice),
            Err(BindingError::Repeated { .. })
        ));
        let empty = tag_application(b"Shoal-Application:  \n").expect_err("empty");
        assert_eq!(
            empty.to_string(),
            "its `Shoal-Application:` line must not be empty"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_application("web").is_ok());
        assert!(check_application("Shop Front").is_ok());
        assert_eq!(check_application(""), Err(ApplicationNameError::Empty));
        assert!(check_application(" web").is_err());
        assert!(check_application("web\u{7}").is_err());
        assert!(check_application(&"a".repeat(MAX_APPLICATION_LEN + 1)).is_err());
    }
}
