#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The modules in layers, bottom first: a module imports only from the layers before its own.

// Layer 0: the wire and the codecs.
mod excerpt;
pub mod protocol;
pub mod serialize_json;
pub mod transcode;

// Layer 1: what the layers above share: who may join (the cluster secret and its proofs), the real
// client's trait and schema, argument tuples, errors, options.
mod arguments;
mod auth;
mod backoff;
mod error;
mod options;
mod role_change;
pub mod service;
pub mod stats;
mod term;

// Layer 2: plumbing: a connection's I/O, timers and scratch buffers; a subscription's item buffer.
mod io;
mod mailbox;

// Layer 3: the port server, which hands registered sockets to whatever serves their channel; the
// follower's connection to a leader.
mod follower;
mod server;

// Layer 4: the leader of a channel, which serves the connections the port server hands it.
mod leader;

// Layer 5: the election, which opens a leader's channel on the port server, or joins a leader.
mod election;

// Layer 5 too: a look at the endpoint's leader process, joined the way a follower joins.
mod inspect;

// Layer 6: the user's stream of items, which unsubscribes through a hook its owner gives it.
mod subscription;

// Layer 7: the user's membership in a channel, across roles and failovers.
mod handle;

// Layer 8: what generated code calls.
#[doc(hidden)]
pub mod __private;

#[cfg(test)]
mod tests;

pub use auth::{AuthError, Secret};
pub use cluster_client_derive::cluster_client;
pub use election::Factory;
pub use error::{Encoded, Error, ErrorKind, UnknownErrorKind};
pub use handle::Handle;
pub use inspect::Inspector;
pub use options::{
    DEFAULT_PORT, NODE_PORT_ENV, Options, PORT_ENV, Role, SINGLE_MODE_ENV, SlowConsumer, Transport,
};
pub use role_change::{LeaderInfo, MemberRole, RoleChange, Roles};
pub use subscription::Subscription;
pub use term::Term;
pub use transcode::Codec;
