use uuid::Uuid;

use crate::ParseError;

/// Items per page when the caller does not say.
pub const PAGE_SIZE_DEFAULT: u32 = 50;
/// Items per page at most; larger requests are clamped to this, not rejected.
pub const PAGE_SIZE_MAX: u32 = 500;
const _: () = assert!(PAGE_SIZE_DEFAULT <= PAGE_SIZE_MAX);

/// Where the previous page ended: the sort key of the last item returned. Lists of entities
/// are ordered by id (time-ordered UUIDv7), the audit trail by sequence number. Opaque to
/// callers: 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(u128);

impl Cursor {
    pub fn after(id: Uuid) -> Self {
        Self(id.as_u128())
    }

    pub fn after_seq(seq: i64) -> Self {
        Self(u128::from(seq.max(0).unsigned_abs()))
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid = raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit());
        let value = valid.then(|| u128::from_str_radix(raw, 16).ok()).flatten();
        value
            .map(Self)
            .ok_or_else(|| ParseError::new("cursor", "not a cursor returned by this API"))
    }

    pub fn id(&self) -> Uuid {
        Uuid::from_u128(self.0)
    }

    /// The cursor as a sequence number; a cursor that is not one (another list's) reads as
    /// past the end: sequence numbers start at 1, so nothing comes before 0.
    pub fn seq(&self) -> i64 {
        i64::try_from(self.0).unwrap_or(0)
    }

    pub fn encode(&self) -> String {
        format!("{:032x}", self.0)
    }
}

/// One page of a list: at most `limit` items, newest first, strictly older than `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    cursor: Option<Cursor>,
}

impl PageRequest {
    /// Clamps `limit` into `1..=PAGE_SIZE_MAX`; an absent limit means `PAGE_SIZE_DEFAULT`.
    pub fn new(limit: Option<u32>, cursor: Option<Cursor>) -> Self {
        let limit = limit.unwrap_or(PAGE_SIZE_DEFAULT).clamp(1, PAGE_SIZE_MAX);
        Self { limit, cursor }
    }

    pub fn first(limit: u32) -> Self {
        Self::new(Some(limit), None)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_clamped_not_rejected() {
        assert_eq!(PageRequest::new(Some(10_000), None).limit(), PAGE_SIZE_MAX);
        assert_eq!(PageRequest::new(Some(0), None).limit(), 1);
        assert_eq!(PageRequest::new(None, None).limit(), PAGE_SIZE_DEFAULT);
    }

    #[test]
    fn an_id_cursor_used_as_a_sequence_reads_past_the_end() {
        assert_eq!(Cursor::after(Uuid::now_v7()).seq(), 0);
        assert_eq!(Cursor::after_seq(42).seq(), 42);
    }

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor::after(Uuid::now_v7());
        assert_eq!(Cursor::parse(&cursor.encode()), Ok(cursor));
        assert!(Cursor::parse("page-2").is_err());
    }
}
