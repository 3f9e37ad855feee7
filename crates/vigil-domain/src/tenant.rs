use crate::text::bounded;
use crate::{ParseError, TenantId, Timestamp};

/// A tenant's short, URL-safe name: 2–63 characters of `a-z`, `0-9` and `-`, starting with a
/// letter or digit and not ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub const LEN_MAX: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let err = |reason: &str| Err(ParseError::new("slug", reason));
        if raw.len() < 2 || raw.len() > Self::LEN_MAX {
            return err("must be 2 to 63 characters long");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return err("may contain only lowercase letters, digits and '-'");
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return err("must not start or end with '-'");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's display name, 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub const LEN_MAX: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("name", raw, Self::LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: TenantName,
    pub created_at: Timestamp,
}

/// A user's login name: an e-mail address, compared case-insensitively (stored lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const LEN_MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let value = raw.trim().to_lowercase();
        let err = |reason: &str| Err(ParseError::new("email", reason));
        if value.is_empty() || value.len() > Self::LEN_MAX {
            return err("must be 1 to 254 characters long");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return err("must contain '@'");
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') || !domain.contains('.') {
            return err("expected local@domain.tld");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return err("must not contain whitespace");
        }
        if value.chars().any(crate::text::is_hidden_format_char) {
            return err(crate::text::HIDDEN_CHAR_REASON);
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slug_rejects_uppercase_and_edges() {
        for bad in ["A", "Acme", "-acme", "acme-", "ac me", "a", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(Slug::parse("acme-01").unwrap().as_str(), "acme-01");
    }

    #[test]
    fn email_is_lowercased() {
        assert_eq!(
            Email::parse(" Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        assert!(Email::parse("ana@localhost").is_err());
        assert!(Email::parse("ana").is_err());
    }

    proptest! {
        #[test]
        fn valid_slugs_round_trip(raw in "[a-z0-9][a-z0-9-]{0,60}[a-z0-9]") {
            let slug = Slug::parse(&raw).unwrap();
            prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug.clone()));
        }

        #[test]
        fn slug_parse_never_panics(raw in ".*") {
            let _ = Slug::parse(&raw);
        }
    }
}
