//! Text a peer chose, cut before it goes into an error: an error's message is logged and may be
//! sent back, and a peer may send a frame's worth of it (a serde message quotes the offending
//! string whole).

/// The longest excerpt of a peer's text in a decoding error's message, in characters.
pub(crate) const MESSAGE_CHARS: usize = 256;

/// The first `max` characters of `text`, with `…` after them when there were more.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_past_the_limit_is_cut_on_a_character_boundary() {
        assert_eq!(excerpt("short", 8), "short");
        assert_eq!(excerpt("exactly8", 8), "exactly8");
        assert_eq!(excerpt("ééééé", 3), "ééé…");
    }
}
