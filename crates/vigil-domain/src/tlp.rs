use std::fmt;

use crate::ParseError;

/// Traffic Light Protocol 2.0 marking. Ordered from least to most restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Tlp {
    Clear,
    Green,
    #[default]
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// Accepts `CLEAR`, `TLP:CLEAR`, `amber+strict`, … case-insensitively, and TLP 1.0's
    /// `WHITE` as `CLEAR`.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        const NAMES: [(&str, Tlp); 6] = [
            ("CLEAR", Tlp::Clear),
            ("WHITE", Tlp::Clear),
            ("GREEN", Tlp::Green),
            ("AMBER", Tlp::Amber),
            ("AMBER+STRICT", Tlp::AmberStrict),
            ("RED", Tlp::Red),
        ];
        let raw = raw.trim();
        let name = match raw.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("TLP:") => &raw[4..],
            _ => raw,
        };
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, tlp)| *tlp)
            .ok_or_else(|| {
                ParseError::new("tlp", "expected CLEAR, GREEN, AMBER, AMBER+STRICT or RED")
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Tlp::Clear => "CLEAR",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prefixed_and_legacy_names() {
        assert_eq!(Tlp::parse("tlp:amber+strict"), Ok(Tlp::AmberStrict));
        assert_eq!(Tlp::parse("WHITE"), Ok(Tlp::Clear));
        assert!(Tlp::parse("PURPLE").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_is_case_insensitive_with_an_optional_prefix(index in 0usize..5, lower: bool, prefixed: bool) {
            let name = Tlp::ALL[index].as_str();
            let raw = format!("{}{}", if prefixed { "tlp:" } else { "" }, name);
            let raw = if lower { raw.to_lowercase() } else { raw };
            proptest::prop_assert_eq!(Tlp::parse(&raw), Ok(Tlp::ALL[index]));
        }

        #[test]
        fn parse_never_panics(raw in "\\PC{0,20}") {
            let _ = Tlp::parse(&raw);
        }
    }

    #[test]
    fn every_marking_round_trips() {
        for tlp in Tlp::ALL {
            assert_eq!(Tlp::parse(tlp.as_str()), Ok(tlp));
        }
    }
}
