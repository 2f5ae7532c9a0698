//! [`FaultBody`]: the application object of a fault answer (`invoke_result` with a `fault`).

use serde::{Deserialize, Serialize};

/// Why the leader failed a call for a reason of the runtime's, as a JavaScript error's fields, so
/// that a Node follower reads it as the `Error` it expects (`name`, `message`, `code`). It is
/// encoded with the channel's codec; a follower that cannot decode it reads the bytes as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FaultBody {
    /// The fault's code, as the error's name.
    pub(crate) name: String,
    /// What happened.
    pub(crate) message: String,
    /// The fault's code.
    pub(crate) code: String,
}
