//! Peers share verified releases, so the origin's load does not grow with the fleet: a host
//! that verified a release serves its bytes to the members of its mesh, and the others fetch
//! them from it before they go to the origin.
//!
//! Everything travels over a [`Sealed`] TCP stream keyed by the cluster key, so only members
//! can ask and nobody else can read. A host serves only what its own channels verified: the
//! store bundles in its release cache (by sha256), its store channel's record of a release's
//! manifest and signature, and its git mirror's objects of a tag. The fetching host verifies
//! what it receives exactly as if it came from the origin (signature, allowed signers,
//! application, floor, pinned size and digest); a peer whose bytes fail is dropped for that
//! release and counted, and when no peer is left the origin serves.
//!
//! `stream` is the sealed stream, `wire` the messages, `serve` the server, `fetch` the client
//! side; who is asked in which order is [`shoal_shared::rollout::sources`].
//!
//! [`Sealed`]: stream::Sealed

pub mod fetch;
pub mod serve;
pub mod stream;
pub mod wire;
