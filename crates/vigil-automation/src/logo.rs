//! App logos: PNG, JPEG or SVG, recognised from their bytes (never from a file name or a
//! declared type) and bounded in size.

use crate::DefinitionError;

/// Largest logo, in bytes.
pub const APP_LOGO_BYTES_MAX: usize = 256 * 1024;

/// A logo and the media type its bytes show.
#[derive(Clone, PartialEq, Eq)]
pub struct AppLogo {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for AppLogo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AppLogo({}, {} bytes)",
            self.media_type,
            self.bytes.len()
        )
    }
}

impl AppLogo {
    /// The logo in `bytes`: `logo` is refused when it is empty, larger than
    /// `APP_LOGO_BYTES_MAX`, or not a PNG, JPEG or SVG image.
    pub fn sniff(bytes: Vec<u8>) -> Result<Self, DefinitionError> {
        if bytes.is_empty() {
            return Err(DefinitionError::new("logo", "is empty"));
        }
        if bytes.len() > APP_LOGO_BYTES_MAX {
            return Err(DefinitionError::new(
                "logo",
                format!("larger than {APP_LOGO_BYTES_MAX} bytes"),
            ));
        }
        let media_type = media_type(&bytes).ok_or_else(|| {
            DefinitionError::new("logo", "not a PNG, JPEG or SVG image (judged by its bytes)")
        })?;
        Ok(Self { media_type, bytes })
    }

    /// Restores a stored logo, trusting the type it was sniffed as.
    pub fn stored(media_type: &str, bytes: Vec<u8>) -> Option<Self> {
        let media_type = ["image/png", "image/jpeg", "image/svg+xml"]
            .into_iter()
            .find(|known| *known == media_type)?;
        Some(Self { media_type, bytes })
    }

    pub fn is_svg(&self) -> bool {
        self.media_type == "image/svg+xml"
    }
}

fn media_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    is_svg(bytes).then_some("image/svg+xml")
}

/// UTF-8 text whose first element, after an XML declaration, comments and a doctype, is
/// `<svg`.
fn is_svg(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    loop {
        rest = rest.trim_start();
        let skip = |open: &str, close: &str, rest: &str| -> Option<usize> {
            rest.strip_prefix(open)?;
            rest.find(close).map(|end| end + close.len())
        };
        if let Some(n) = skip("<?xml", "?>", rest)
            .or_else(|| skip("<!--", "-->", rest))
            .or_else(|| skip("<!DOCTYPE", ">", rest))
        {
            rest = &rest[n..];
            continue;
        }
        let Some(after) = rest.strip_prefix("<svg") else {
            return false;
        };
        return after
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace() || c == '>' || c == '/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_decide_the_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        assert_eq!(AppLogo::sniff(png).unwrap().media_type, "image/png");
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];
        assert_eq!(AppLogo::sniff(jpeg).unwrap().media_type, "image/jpeg");
        let svg = b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- logo -->\n<!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec();
        assert!(AppLogo::sniff(svg).unwrap().is_svg());
        for bad in [
            b"<html><svg></svg></html>".to_vec(),
            b"GIF89a".to_vec(),
            b"<svgfoo>".to_vec(),
            vec![0xFF, 0xFE, 0x00],
            Vec::new(),
        ] {
            assert!(AppLogo::sniff(bad.clone()).is_err(), "{bad:?}");
        }
        let huge = [b"\x89PNG\r\n\x1a\n".to_vec(), vec![0; APP_LOGO_BYTES_MAX]].concat();
        assert!(AppLogo::sniff(huge).unwrap_err().reason.contains("larger"));
    }
}
