use crate::ParseError;

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
