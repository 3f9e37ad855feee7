//! Indicator CSV, as `vigil hunt` and `POST /api/v1/indicators/import` read it.
//!
//! RFC 4180 text with a header row. Required columns: `type` and `value`. Optional:
//! `match_subdomains`, `valid_from`, `valid_until` (RFC 3339), `confidence` (0–100), `tlp`,
//! `active`, `source`, `source_ref`, `finding_id`. Column names are matched without regard to
//! case; other columns (a feed's `comment`, say) are ignored. An empty cell is an absent
//! value. A row that does not parse is rejected with its line and reason; the others are
//! read.

use std::borrow::Cow;
use std::fmt;

use vigil_domain::{
    Confidence, ExternalId, FindingId, IndicatorKind, IndicatorValue, NewIndicator, Source,
    Timestamp, Tlp,
};

/// Why a text is not an indicator CSV at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvError {
    Empty,
    Header(String),
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Empty => f.write_str("empty CSV; expected a header row `type,value`"),
            CsvError::Header(reason) => write!(f, "CSV header: {reason}"),
        }
    }
}

impl std::error::Error for CsvError {}

/// A row that was not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRejected {
    /// The line the row starts on, 1-based (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// One indicator row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvIndicator {
    pub line: u64,
    pub indicator: NewIndicator,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvImport {
    pub indicators: Vec<CsvIndicator>,
    pub rejected: Vec<CsvRejected>,
}

/// Reads every row of an indicator CSV (see the module documentation).
pub fn parse_indicator_csv(text: &str) -> Result<CsvImport, CsvError> {
    let mut import = CsvImport::default();
    for_each_indicator_row(text, |line, row| match row {
        Ok(indicator) => import.indicators.push(CsvIndicator { line, indicator }),
        Err(reason) => import.rejected.push(CsvRejected { line, reason }),
    })?;
    Ok(import)
}

/// [`parse_indicator_csv`] one row at a time, with its line, without collecting: for callers
/// that keep only part of each indicator (a million rows of `NewIndicator` are ~200 MB).
pub fn for_each_indicator_row(
    text: &str,
    mut row: impl FnMut(u64, Result<NewIndicator, String>),
) -> Result<(), CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Records {
        rest: text,
        line: 1,
    }
    .filter(|record| !record.is_blank());
    let header = records.next().ok_or(CsvError::Empty)?;
    let columns = Columns::from_header(&header).map_err(CsvError::Header)?;
    for record in records {
        row(record.line, columns.indicator(&record));
    }
    Ok(())
}

/// Where each known column is in a row.
struct Columns {
    kind: usize,
    value: usize,
    match_subdomains: Option<usize>,
    valid_from: Option<usize>,
    valid_until: Option<usize>,
    confidence: Option<usize>,
    tlp: Option<usize>,
    active: Option<usize>,
    source: Option<usize>,
    source_ref: Option<usize>,
    finding_id: Option<usize>,
}

impl Columns {
    fn from_header(header: &CsvRecord) -> Result<Self, String> {
        let names = header.fields.as_ref().map_err(Clone::clone)?;
        let find = |name: &str| {
            names
                .iter()
                .position(|column| column.trim().eq_ignore_ascii_case(name))
        };
        let (Some(kind), Some(value)) = (find("type"), find("value")) else {
            return Err(format!(
                "expected columns `type` and `value`, found {names:?}"
            ));
        };
        Ok(Self {
            kind,
            value,
            match_subdomains: find("match_subdomains"),
            valid_from: find("valid_from"),
            valid_until: find("valid_until"),
            confidence: find("confidence"),
            tlp: find("tlp"),
            active: find("active"),
            source: find("source"),
            source_ref: find("source_ref"),
            finding_id: find("finding_id"),
        })
    }

    fn indicator(&self, record: &CsvRecord) -> Result<NewIndicator, String> {
        let fields = record.fields.as_ref().map_err(Clone::clone)?;
        let get = |i: usize| fields.get(i).map_or("", |field| field.trim());
        let cell = |column: Option<usize>| column.map(get).filter(|raw| !raw.is_empty());
        let raw_kind = get(self.kind);
        let kind = IndicatorKind::parse(&raw_kind.to_ascii_lowercase())
            .map_err(|err| format!("type {raw_kind:?}: {err}"))?;
        let value = IndicatorValue::parse(kind, get(self.value)).map_err(|err| err.to_string())?;
        let mut new = NewIndicator::new(value);
        let flag = |name: &str, raw: &str| {
            parse_bool(raw).ok_or_else(|| format!("{name} {raw:?}: expected true or false"))
        };
        let text = |err: vigil_domain::ParseError| err.to_string();
        if let Some(raw) = cell(self.match_subdomains) {
            new.match_subdomains = flag("match_subdomains", raw)?;
        }
        if let Some(raw) = cell(self.active) {
            new.active = flag("active", raw)?;
        }
        new.valid_from = cell(self.valid_from)
            .map(Timestamp::parse)
            .transpose()
            .map_err(text)?;
        new.valid_until = cell(self.valid_until)
            .map(Timestamp::parse)
            .transpose()
            .map_err(text)?;
        new.confidence = cell(self.confidence)
            .map(|raw| {
                raw.parse::<i64>()
                    .map_err(|_| format!("confidence {raw:?}: expected an integer from 0 to 100"))
                    .and_then(|n| Confidence::parse(n).map_err(text))
            })
            .transpose()?;
        if let Some(raw) = cell(self.tlp) {
            new.tlp = Tlp::parse(raw).map_err(text)?;
        }
        new.source = cell(self.source)
            .map(Source::parse)
            .transpose()
            .map_err(text)?;
        new.source_ref = cell(self.source_ref)
            .map(ExternalId::parse)
            .transpose()
            .map_err(text)?;
        new.finding_id = cell(self.finding_id)
            .map(FindingId::parse)
            .transpose()
            .map_err(text)?;
        new.validate().map_err(text)?;
        Ok(new)
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// One CSV record and the line it starts on (1-based).
struct CsvRecord<'a> {
    line: u64,
    fields: Result<Vec<Cow<'a, str>>, String>,
}

impl CsvRecord<'_> {
    fn is_blank(&self) -> bool {
        matches!(&self.fields, Ok(fields) if fields.len() == 1 && fields[0].trim().is_empty())
    }
}

/// The records of RFC 4180 text: comma-separated fields, `"`-quoted fields may hold commas,
/// line breaks and `""` for a quote; lines end in LF or CRLF. A malformed record is an `Err`
/// with the reason, and parsing resumes at the next line. A line without any quote (nearly
/// every line of a feed) is split in place, without copying.
struct Records<'a> {
    rest: &'a str,
    line: u64,
}

impl<'a> Iterator for Records<'a> {
    type Item = CsvRecord<'a>;

    fn next(&mut self) -> Option<CsvRecord<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.line;
        let (text, after, newline) = match self.rest.find('\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..], true),
            None => (self.rest, "", false),
        };
        if !text.contains('"') {
            let text = match text.strip_suffix('\r') {
                Some(stripped) if newline => stripped,
                _ => text,
            };
            self.rest = after;
            self.line += u64::from(newline);
            let fields = text.split(',').map(Cow::Borrowed).collect();
            return Some(CsvRecord {
                line: start,
                fields: Ok(fields),
            });
        }
        let mut chars = self.rest.chars();
        let fields = csv_record(&mut chars, &mut self.line);
        self.rest = chars.as_str();
        Some(CsvRecord {
            line: start,
            fields: fields.map(|fields| fields.into_iter().map(Cow::Owned).collect()),
        })
    }
}

fn peek(chars: &std::str::Chars<'_>) -> Option<char> {
    chars.clone().next()
}

fn csv_record(chars: &mut std::str::Chars<'_>, line: &mut u64) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut error = None;
    loop {
        let mut field = String::new();
        let quoted = peek(chars) == Some('"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field".to_owned()),
                    Some('"') if peek(chars) == Some('"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => {
                        *line += u64::from(c == '\n');
                        field.push(c);
                    }
                }
            }
        }
        // The rest of the field: all of an unquoted one, nothing after a closing quote.
        let end = loop {
            match chars.next() {
                None => break None,
                Some(',') => break Some(','),
                Some('\n') => break Some('\n'),
                Some('\r') if peek(chars) == Some('\n') => {}
                Some(c) if quoted => {
                    error.get_or_insert_with(|| format!("{c:?} after a closing quote"));
                }
                Some(c) => field.push(c),
            }
        };
        fields.push(field);
        if end != Some(',') {
            *line += u64::from(end == Some('\n'));
            return error.map_or(Ok(fields), Err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_csv(text: &str, expected: &[(u64, Result<&[&str], &str>)]) {
        let records: Vec<(u64, Result<Vec<String>, String>)> = Records {
            rest: text,
            line: 1,
        }
        .map(|record| {
            let fields = record
                .fields
                .map(|fields| fields.into_iter().map(Cow::into_owned).collect());
            (record.line, fields)
        })
        .collect();
        let expected: Vec<(u64, Result<Vec<String>, String>)> = expected
            .iter()
            .map(|(line, fields)| {
                let fields = fields
                    .map(|fields| fields.iter().map(|f| (*f).to_owned()).collect())
                    .map_err(str::to_owned);
                (*line, fields)
            })
            .collect();
        assert_eq!(records, expected, "{text:?}");
    }

    #[test]
    fn csv_records_follow_rfc_4180() {
        check_csv(
            "a,b\r\n1,2\n",
            &[(1, Ok(&["a", "b"])), (2, Ok(&["1", "2"]))],
        );
        check_csv("a,,\n", &[(1, Ok(&["a", "", ""]))]);
        check_csv(
            "\"x,y\",\"say \"\"hi\"\"\"",
            &[(1, Ok(&["x,y", "say \"hi\""]))],
        );
        check_csv(
            "\"two\nlines\",b\nc,d",
            &[(1, Ok(&["two\nlines", "b"])), (3, Ok(&["c", "d"]))],
        );
        check_csv(
            "\"a\"b,c\nd,e\n",
            &[(1, Err("'b' after a closing quote")), (2, Ok(&["d", "e"]))],
        );
        check_csv("a,\"open", &[(1, Err("unterminated quoted field"))]);
    }

    #[test]
    fn optional_columns_are_read_and_checked() {
        let text = "Type,value,confidence,valid_until,comment,match_subdomains\n\
                    domain,Evil.Example.,80,2030-01-01T00:00:00Z,ignored,yes\n\
                    ipv4,999.1.1.1,,,,\n\
                    md5,d41d8cd98f00b204e9800998ecf8427e,101,,,\n\
                    ipv4,192.0.2.1,,,,true\n";
        let import = parse_indicator_csv(text).unwrap();
        assert_eq!(import.indicators.len(), 1);
        let first = &import.indicators[0];
        assert_eq!(
            (first.line, first.indicator.value.as_str()),
            (2, "evil.example")
        );
        assert!(first.indicator.match_subdomains);
        assert_eq!(first.indicator.confidence.map(|c| c.get()), Some(80));
        let rejected: Vec<(u64, &str)> = import
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert_eq!(rejected[0].0, 3);
        assert!(rejected[0].1.contains("ipv4"), "{rejected:?}");
        assert!(rejected[1].1.contains("confidence"), "{rejected:?}");
        assert!(rejected[2].1.contains("match_subdomains"), "{rejected:?}");
    }

    #[test]
    fn a_header_without_type_and_value_is_refused() {
        assert_eq!(parse_indicator_csv(""), Err(CsvError::Empty));
        let err = parse_indicator_csv("kind,ioc\nipv4,192.0.2.1\n").unwrap_err();
        assert!(err.to_string().contains("`type` and `value`"), "{err}");
    }
}
