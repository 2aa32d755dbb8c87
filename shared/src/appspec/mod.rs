//! The AppSpec engine: read an `appspec.yml` as the CodeDeploy agent does, validate it, and
//! give back the model plus the warnings a user should see.

mod diagnostic;
mod fields;
pub mod lifecycle;
mod model;
mod parse;
mod permissions;
pub mod yaml;

pub use diagnostic::{AppSpecError, ErrorKind, Warning};
pub use model::*;
pub use parse::{EVENT_TIMEOUT_LIMIT, Parsed, parse};
pub use permissions::{AclEntryError, SelinuxRangeError, acl_entry, selinux_range};
