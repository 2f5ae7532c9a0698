//! I/O plumbing under the roles: the transport seam ([`transport`]), the coalescing writer of a
//! connection ([`writer`]), a one-waiter flag ([`signal`]), a limit on repeated warnings ([`throttle`]), the housekeeping timers ([`clock`]) and
//! the per-thread buffer of a call's short-lived values ([`scratch`]).
//!
//! Nothing here knows about leaders, followers or handles; it imports only the wire ([`crate::protocol`]).

pub(crate) mod clock;
pub(crate) mod scratch;
pub(crate) mod signal;
pub(crate) mod throttle;
pub(crate) mod transport;
pub(crate) mod writer;
