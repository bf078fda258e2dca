//! Stream titles: what is accepted, and the invisible characters stripped first.

use crate::error::{Error, Result};

/// Longest accepted title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Tells whether `c` is an invisible formatting character that can reorder or hide
/// text around it: bidirectional embeddings, overrides, isolates and marks
/// (Trojan Source), zero-width characters, and the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Checks a title and returns it with bidirectional and zero-width formatting
/// characters stripped, then trimmed; control characters (C0, C1, DEL) are refused.
pub fn validate_title(title: &str) -> Result<String> {
    let stripped: String = title.chars().filter(|c| !is_invisible_format(*c)).collect();
    let title = stripped.trim();
    if title.chars().any(char::is_control) {
        return Err(Error::invalid(
            "stream.title",
            "must not contain control characters",
        ));
    }
    if title.is_empty() {
        return Err(Error::invalid("stream.title", "must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(Error::invalid(
            "stream.title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(title.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_checked() {
        assert_eq!(validate_title("  Morning show ").unwrap(), "Morning show");
        assert!(validate_title("   ").is_err());
        assert!(validate_title(&"é".repeat(200)).is_ok());
        assert!(validate_title(&"é".repeat(201)).is_err());
        assert!(validate_title("bell\u{7}").is_err());
        assert!(validate_title("esc\u{1b}[31m").is_err());
        assert!(validate_title("c1\u{9b}").is_err());
    }

    #[test]
    fn bidi_and_zero_width_characters_are_stripped_from_titles() {
        assert_eq!(
            validate_title("Live \u{202E}3pm.exe\u{202C} show").unwrap(),
            "Live 3pm.exe show"
        );
        assert_eq!(
            validate_title("\u{2067}a\u{2069}\u{200B}b\u{FEFF}\u{200F}\u{061C}").unwrap(),
            "ab"
        );
        assert!(
            validate_title("\u{202E}\u{2066} \u{200D}").is_err(),
            "nothing visible is left"
        );
        assert_eq!(
            validate_title("Καλημέρα 世界 🎥").unwrap(),
            "Καλημέρα 世界 🎥"
        );
    }
}
