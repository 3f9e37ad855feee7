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
        let upper = raw.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("TLP:").unwrap_or(&upper);
        match name {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(ParseError::new(
                "tlp",
                "expected CLEAR, GREEN, AMBER, AMBER+STRICT or RED",
            )),
        }
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

    #[test]
    fn every_marking_round_trips() {
        for tlp in Tlp::ALL {
            assert_eq!(Tlp::parse(tlp.as_str()), Ok(tlp));
        }
    }
}
