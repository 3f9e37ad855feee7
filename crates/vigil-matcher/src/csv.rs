//! Indicator CSV, as `vigil hunt` and `POST /api/v1/indicators/import` read it.
//!
//! RFC 4180 text with a header row. Required columns: `type` and `value`. Optional:
//! `match_subdomains`, `valid_from`, `valid_until` (RFC 3339), `confidence` (0–100), `tlp`,
//! `active`, `source`, `source_ref`, `finding_id`. Column names are matched without regard to
//! case; other columns (a feed's `comment`, say) are ignored. An empty cell is an absent
//! value. A row that does not parse is rejected with its line and reason; the others are
//! read.
//!
//! The records come from the `csv` crate, which is lenient the way spreadsheets and Python
//! are: `"a"b` reads as `ab`, a stray quote inside an unquoted field is kept. The one thing it
//! would accept silently that loses rows — a quote opened and never closed, which swallows
//! the rest of the file — is refused here as an unterminated quoted field.

use std::fmt;

use vigil_domain::{
    Confidence, ExternalId, FindingId, IndicatorKind, IndicatorValue, NewIndicator, ParseError,
    Source, Timestamp, Tlp,
};

/// Why a text is not an indicator CSV at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvError {
    Empty,
    /// The header record itself is malformed (a quoted field never closed).
    Header(&'static str),
    /// The header lacks `type` or `value`; these are the columns it has.
    Columns(Vec<String>),
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Empty => f.write_str("empty CSV; expected a header row `type,value`"),
            CsvError::Header(reason) => write!(f, "CSV header: {reason}"),
            CsvError::Columns(found) => write!(
                f,
                "CSV header: expected columns `type` and `value`, found {found:?}"
            ),
        }
    }
}

impl std::error::Error for CsvError {}

/// Why one row is not an indicator. The text (`Display`) is what an import report and
/// `vigil hunt` show for the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// The record itself is malformed: a quoted field never closed.
    Record(&'static str),
    /// The `type` cell names no indicator type.
    Kind { raw: String, error: ParseError },
    /// A cell does not hold what its column takes.
    Cell {
        column: &'static str,
        raw: String,
        expected: &'static str,
    },
    /// A value does not parse, or the indicator it makes is inconsistent.
    Invalid(ParseError),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::Record(reason) => f.write_str(reason),
            RowError::Kind { raw, error } => write!(f, "type {raw:?}: {error}"),
            RowError::Cell {
                column,
                raw,
                expected,
            } => write!(f, "{column} {raw:?}: expected {expected}"),
            RowError::Invalid(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for RowError {}

impl From<ParseError> for RowError {
    fn from(error: ParseError) -> Self {
        RowError::Invalid(error)
    }
}

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
        Err(reason) => import.rejected.push(CsvRejected {
            line,
            reason: reason.to_string(),
        }),
    })?;
    Ok(import)
}

/// [`parse_indicator_csv`] one row at a time, with its line, without collecting: for callers
/// that keep only part of each indicator (a million rows of `NewIndicator` are ~200 MB).
pub fn for_each_indicator_row(
    text: &str,
    mut row: impl FnMut(u64, Result<NewIndicator, RowError>),
) -> Result<(), CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Records::new(text);
    let header = loop {
        match records.next() {
            None => return Err(CsvError::Empty),
            Some(record) if record.is_blank() => {}
            Some(record) => break record,
        }
    };
    let columns = Columns::from_header(&header)?;
    while let Some(record) = records.next() {
        if !record.is_blank() {
            row(record.line, columns.indicator(&record));
        }
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
    fn from_header(header: &CsvRecord) -> Result<Self, CsvError> {
        let names = header.fields.map_err(CsvError::Header)?;
        let find = |name: &str| {
            names
                .iter()
                .position(|column| column.trim().eq_ignore_ascii_case(name))
        };
        let (Some(kind), Some(value)) = (find("type"), find("value")) else {
            return Err(CsvError::Columns(names.iter().map(str::to_owned).collect()));
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

    fn indicator(&self, record: &CsvRecord) -> Result<NewIndicator, RowError> {
        let fields = match &record.fields {
            Ok(fields) => fields,
            Err(reason) => return Err(RowError::Record(reason)),
        };
        let get = |i: usize| fields.get(i).map_or("", |field| field.trim());
        let cell = |column: Option<usize>| column.map(get).filter(|raw| !raw.is_empty());
        let raw_kind = get(self.kind);
        let kind = IndicatorKind::parse(&raw_kind.to_ascii_lowercase()).map_err(|error| {
            RowError::Kind {
                raw: raw_kind.to_owned(),
                error,
            }
        })?;
        let mut new = NewIndicator::new(IndicatorValue::parse(kind, get(self.value))?);
        let flag = |column: &'static str, raw: &str| {
            parse_bool(raw).ok_or_else(|| RowError::Cell {
                column,
                raw: raw.to_owned(),
                expected: "true or false",
            })
        };
        if let Some(raw) = cell(self.match_subdomains) {
            new.match_subdomains = flag("match_subdomains", raw)?;
        }
        if let Some(raw) = cell(self.active) {
            new.active = flag("active", raw)?;
        }
        new.valid_from = cell(self.valid_from).map(Timestamp::parse).transpose()?;
        new.valid_until = cell(self.valid_until).map(Timestamp::parse).transpose()?;
        new.confidence = cell(self.confidence)
            .map(|raw| {
                let n = raw.parse::<i64>().map_err(|_| RowError::Cell {
                    column: "confidence",
                    raw: raw.to_owned(),
                    expected: "an integer from 0 to 100",
                })?;
                Ok::<_, RowError>(Confidence::parse(n)?)
            })
            .transpose()?;
        if let Some(raw) = cell(self.tlp) {
            new.tlp = Tlp::parse(raw)?;
        }
        new.source = cell(self.source).map(Source::parse).transpose()?;
        new.source_ref = cell(self.source_ref).map(ExternalId::parse).transpose()?;
        new.finding_id = cell(self.finding_id).map(FindingId::parse).transpose()?;
        new.validate()?;
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
    fields: Result<&'a csv::StringRecord, &'static str>,
}

impl CsvRecord<'_> {
    fn is_blank(&self) -> bool {
        matches!(&self.fields, Ok(fields) if fields.iter().all(|field| field.trim().is_empty()))
    }
}

/// The records of `text`, one buffer reused from one to the next (a lending iterator, hence
/// not `Iterator`). Lines end in LF or CRLF; rows may have any number of fields; empty lines
/// are skipped.
struct Records<'t> {
    text: &'t str,
    reader: csv::Reader<&'t [u8]>,
    record: csv::StringRecord,
    /// Line breaks counted up to this byte: the line at `counted` is `line`.
    counted: usize,
    line: u64,
}

impl<'t> Records<'t> {
    fn new(text: &'t str) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        Self {
            text,
            reader,
            record: csv::StringRecord::new(),
            counted: 0,
            line: 1,
        }
    }

    /// Where the record just read begins, and its line. The reader reports where it stood
    /// before skipping the line breaks in front of the record, so they are skipped here too,
    /// and lines are counted from the text itself.
    fn record_start(&mut self, reported: u64) -> (usize, u64) {
        let bytes = self.text.as_bytes();
        let mut begin = usize::try_from(reported)
            .unwrap_or(bytes.len())
            .clamp(self.counted, bytes.len());
        while matches!(bytes.get(begin), Some(b'\r' | b'\n')) {
            begin += 1;
        }
        let breaks = bytes[self.counted..begin]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count();
        self.line += u64::try_from(breaks).unwrap_or(u64::MAX);
        self.counted = begin;
        (begin, self.line)
    }

    fn next(&mut self) -> Option<CsvRecord<'_>> {
        let reported = self.reader.position().byte();
        let read = self.reader.read_record(&mut self.record);
        let reported = self.record.position().map_or(reported, csv::Position::byte);
        let (begin, line) = self.record_start(reported);
        let fields = match read {
            Ok(false) => return None,
            // Only invalid UTF-8 fails a read, and the text is a `str`.
            Err(_) => Err("not UTF-8"),
            Ok(true) => {
                let at_end = self.reader.position().byte() >= self.text.len() as u64;
                if at_end && unterminated(&self.text.as_bytes()[begin..]) {
                    Err("unterminated quoted field")
                } else {
                    Ok(&self.record)
                }
            }
        };
        Some(CsvRecord { line, fields })
    }
}

/// Whether the raw text of the file's last record opens a quoted field it never closes: an
/// odd number of quotes, one of them opening a field.
fn unterminated(raw: &[u8]) -> bool {
    let quotes = raw.iter().filter(|&&byte| byte == b'"').count();
    let opens_field = raw.first() == Some(&b'"') || raw.windows(2).any(|pair| pair == b",\"");
    quotes % 2 == 1 && opens_field
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_csv(text: &str, expected: &[(u64, Result<&[&str], &str>)]) {
        let mut records = Records::new(text);
        let mut read: Vec<(u64, Result<Vec<String>, String>)> = Vec::new();
        while let Some(record) = records.next() {
            let fields = record
                .fields
                .map(|fields| fields.iter().map(str::to_owned).collect())
                .map_err(str::to_owned);
            read.push((record.line, fields));
        }
        let expected: Vec<(u64, Result<Vec<String>, String>)> = expected
            .iter()
            .map(|(line, fields)| {
                let fields = fields
                    .map(|fields| fields.iter().map(|f| (*f).to_owned()).collect())
                    .map_err(str::to_owned);
                (*line, fields)
            })
            .collect();
        assert_eq!(read, expected, "{text:?}");
    }

    #[test]
    fn csv_records_follow_rfc_4180() {
        check_csv(
            "a,b\r\n1,2\n",
            &[(1, Ok(&["a", "b"])), (2, Ok(&["1", "2"]))],
        );
        check_csv("a,,\n", &[(1, Ok(&["a", "", ""]))]);
        check_csv(
            "\n\r\na,b\n\nc,d\n",
            &[(3, Ok(&["a", "b"])), (5, Ok(&["c", "d"]))],
        );
        check_csv(
            "\"x,y\",\"say \"\"hi\"\"\"",
            &[(1, Ok(&["x,y", "say \"hi\""]))],
        );
        check_csv(
            "\"two\nlines\",b\nc,d",
            &[(1, Ok(&["two\nlines", "b"])), (3, Ok(&["c", "d"]))],
        );
        // Lenient where nothing is lost: text after a closing quote joins the field, a quote
        // inside an unquoted field is kept.
        check_csv(
            "\"a\"b,c\nd,e\n",
            &[(1, Ok(&["ab", "c"])), (2, Ok(&["d", "e"]))],
        );
        check_csv("x\"y,z\n", &[(1, Ok(&["x\"y", "z"]))]);
        // A quote never closed would swallow every row after it: refused.
        check_csv("a,\"open", &[(1, Err("unterminated quoted field"))]);
        check_csv(
            "a,b\nc,\"open\nd,e\n",
            &[(1, Ok(&["a", "b"])), (2, Err("unterminated quoted field"))],
        );
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
    fn a_rejected_row_says_which_cell_and_what_it_expected() {
        let text = "type,value,confidence,active\n\
                    bogus,x.example,,\n\
                    ipv4,192.0.2.1,high,\n\
                    ipv4,192.0.2.1,,maybe\n\
                    ipv4,192.0.2.300,,\n\
                    ipv4,192.0.2.1,,\"open\n";
        let mut errors = Vec::new();
        for_each_indicator_row(text, |line, row| {
            if let Err(error) = row {
                errors.push((line, error));
            }
        })
        .unwrap();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(matches!(&errors[0], (2, RowError::Kind { raw, .. }) if raw == "bogus"));
        assert_eq!(
            errors[1],
            (
                3,
                RowError::Cell {
                    column: "confidence",
                    raw: "high".into(),
                    expected: "an integer from 0 to 100"
                }
            )
        );
        assert_eq!(
            errors[1].1.to_string(),
            "confidence \"high\": expected an integer from 0 to 100"
        );
        assert!(matches!(
            &errors[2],
            (
                4,
                RowError::Cell {
                    column: "active",
                    ..
                }
            )
        ));
        assert!(matches!(&errors[3], (5, RowError::Invalid(_))));
        assert_eq!(
            errors[4],
            (6, RowError::Record("unterminated quoted field"))
        );
    }

    #[test]
    fn a_header_without_type_and_value_is_refused() {
        assert_eq!(parse_indicator_csv(""), Err(CsvError::Empty));
        let err = parse_indicator_csv("kind,ioc\nipv4,192.0.2.1\n").unwrap_err();
        assert_eq!(err, CsvError::Columns(vec!["kind".into(), "ioc".into()]));
        assert!(err.to_string().contains("`type` and `value`"), "{err}");
    }
}
