use crate::ParseError;

/// Characters that change how text around them is shown without being seen themselves:
/// the bidirectional embeddings, overrides, isolates and marks ("Trojan Source"), and the
/// zero-width spaces and joiners and the byte-order mark. Refused in names, slugs, e-mails,
/// titles and tags, where they would make two values look alike or one look like another.
pub fn is_hidden_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
            | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
            | '\u{061C}' // Arabic letter mark
            | '\u{FEFF}' // zero-width no-break space, BOM
    )
}

/// The message for a value holding one of `is_hidden_format_char`.
pub(crate) const HIDDEN_CHAR_REASON: &str = "must not contain invisible formatting characters (bidirectional controls, zero-width characters)";

/// Checks that `trimmed` is non-empty, at most `len_max` characters and free of control
/// characters (except newlines and tabs when `multiline`).
fn check(
    what: &'static str,
    trimmed: &str,
    len_max: usize,
    multiline: bool,
) -> Result<(), ParseError> {
    if trimmed.is_empty() {
        return Err(ParseError::new(what, "must not be empty"));
    }
    let n_chars = trimmed.chars().count();
    if n_chars > len_max {
        return Err(ParseError::new(
            what,
            format!("is {n_chars} characters long; the maximum is {len_max}"),
        ));
    }
    let allowed_control = |c: char| multiline && (c == '\n' || c == '\t' || c == '\r');
    if trimmed
        .chars()
        .any(|c| c.is_control() && !allowed_control(c))
    {
        return Err(ParseError::new(what, "must not contain control characters"));
    }
    if !multiline && trimmed.chars().any(is_hidden_format_char) {
        return Err(ParseError::new(what, HIDDEN_CHAR_REASON));
    }
    Ok(())
}

/// Trims `raw` and checks it (see `check`). Shared by the text newtypes.
pub(crate) fn bounded(
    what: &'static str,
    raw: &str,
    len_max: usize,
    multiline: bool,
) -> Result<String, ParseError> {
    let trimmed = raw.trim();
    check(what, trimmed, len_max, multiline)?;
    Ok(trimmed.to_owned())
}

/// `bounded` for a string the caller owns: keeps its buffer when there is nothing to trim,
/// which is always the case for values read back from the store.
pub(crate) fn bounded_owned(
    what: &'static str,
    raw: String,
    len_max: usize,
    multiline: bool,
) -> Result<String, ParseError> {
    let trimmed = raw.trim();
    check(what, trimmed, len_max, multiline)?;
    if trimmed.len() == raw.len() {
        Ok(raw)
    } else {
        Ok(trimmed.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Email, RiskTitle, Tag, TenantName};

    #[test]
    fn text_cannot_hide_bidi_controls_or_zero_width_characters() {
        for hidden in [
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{061C}',
        ] {
            let raw = format!("invoice{hidden}fdp.exe");
            for err in [
                RiskTitle::parse(&raw).unwrap_err(),
                Tag::parse(&raw).unwrap_err(),
                TenantName::parse(&raw).unwrap_err(),
                Email::parse(&format!("ana{hidden}@acme.example")).unwrap_err(),
            ] {
                assert!(err.to_string().contains("invisible"), "{hidden:?}: {err}");
            }
        }
        assert!(RiskTitle::parse("Überprüfung — naïve café ✓").is_ok());
        assert!(
            bounded("description", "a\u{200D}b", 10, true).is_ok(),
            "multi-line text (descriptions) keeps joiners, e.g. in emoji"
        );
    }
}
