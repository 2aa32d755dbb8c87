//! The AppSpec engine: read an `appspec.yml` as the CodeDeploy agent does, validate it, and
//! give back the model plus the warnings a user should see.

pub mod lifecycle;
mod model;

pub use model::*;
