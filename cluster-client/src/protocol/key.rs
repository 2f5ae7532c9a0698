//! Subscription keys: the prefix `$$inner$$__` followed by the canonical JSON of the subscription's
//! arguments, as the original's. A follower sends the key and, apart, the arguments' JSON (`reg`);
//! the leader knows a topic by its method and key.

/// The prefix of every subscription key, as the original's.
pub(crate) const KEY_PREFIX: &str = "$$inner$$__";

/// The key of a subscription whose arguments' canonical JSON is `reg`.
///
/// ```
/// assert_eq!(cluster_client::protocol::subscription_key(r#""billing""#), r#"$$inner$$__"billing""#);
/// ```
pub fn subscription_key(reg: &str) -> String {
    format!("{KEY_PREFIX}{reg}")
}

/// The arguments' canonical JSON in a subscription key (the whole key when it lacks the prefix).
pub(crate) fn key_args(key: &str) -> &str {
    key.strip_prefix(KEY_PREFIX).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_prefix_and_the_arguments() {
        let key = subscription_key(r#"["a/b",3]"#);
        assert_eq!(key, r#"$$inner$$__["a/b",3]"#);
        assert_eq!(key_args(&key), r#"["a/b",3]"#);
        assert_eq!(
            key_args("null"),
            "null",
            "a key without the prefix is all arguments"
        );
    }
}
