//! `vigil hunt`: the correlator's matcher, offline. Reads an indicator CSV or STIX 2.1 bundle
//! and JSON Lines events, prints one line per match, exits like grep (0 matched, 1 nothing
//! matched, 2 error).
//!
//! Only whitelisted IOC-bearing fields are matched (`vigil_matcher::candidates`), so a value
//! mentioned in free text such as `message` is not a match: the structured answer to
//! `grep -F -f iocs.txt events.jsonl`.
//!
//! Events are read in bounded chunks on the main thread while up to `--threads` workers match
//! the previous batch against one shared index; results are written in input order.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use vigil_domain::{IndicatorKind, Timestamp};
use vigil_matcher::{
    Index, IndexedIndicator, Scanned, for_each_indicator_row, parse_bundle, scan_event,
};

/// Most matching threads `--threads` accepts.
pub(crate) const HUNT_THREADS_MAX: usize = 64;
/// Most event lines one worker matches at a time.
pub(crate) const HUNT_CHUNK_LINES: usize = 4096;
/// A chunk is closed once it holds this many bytes, so that long lines keep memory bounded.
pub(crate) const HUNT_CHUNK_BYTES: usize = 4 << 20;
/// Longest event line looked at; longer lines are skipped with a warning.
pub(crate) const HUNT_LINE_BYTES_MAX: usize = 1 << 20;
/// Largest indicator file read.
pub(crate) const HUNT_INDICATORS_BYTES_MAX: u64 = 256 << 20;
/// Warnings printed per run; the rest are only counted.
pub(crate) const HUNT_WARNINGS_MAX: u64 = 100;
/// Least time between two redraws of the progress line.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
const READ_BUFFER_BYTES: usize = 256 << 10;
const WRITE_BUFFER_BYTES: usize = 64 << 10;

const _: () = assert!(HUNT_THREADS_MAX >= 1 && HUNT_CHUNK_LINES >= 1);
const _: () = assert!(HUNT_LINE_BYTES_MAX <= HUNT_CHUNK_BYTES);

#[derive(Debug, clap::Args)]
pub(crate) struct HuntArgs {
    /// Indicator CSV with a header row naming at least `type` and `value` (optionally
    /// `match_subdomains`: true/false), or a STIX 2.1 bundle (JSON; `=` comparisons joined by
    /// OR are imported, other indicators are skipped with a warning).
    #[arg(long, value_name = "FILE")]
    indicators: PathBuf,
    /// Events as JSON Lines, one object per line; `-` reads stdin.
    #[arg(long, value_name = "FILE|-")]
    events: PathBuf,
    /// Output: `tsv` (event_id, field, value, indicator_type) or `jsonl`.
    #[arg(long, value_enum, default_value_t = Format::Tsv)]
    format: Format,
    /// Matching threads [default: available parallelism, at most 64].
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Tsv,
    Jsonl,
}

fn parse_threads(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if (1..=HUNT_THREADS_MAX).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from 1 to {HUNT_THREADS_MAX}")),
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, HUNT_THREADS_MAX)
}

/// Runs `vigil hunt` and answers with its exit status.
pub(crate) fn run(args: &HuntArgs) -> ExitCode {
    let mut diagnostics = Diagnostics::new(io::stderr().is_terminal());
    let result = hunt(args, &mut diagnostics);
    diagnostics.finish();
    match result {
        Ok(n_matches) if n_matches > 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("vigil hunt: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The number of matches found.
fn hunt(args: &HuntArgs, diagnostics: &mut Diagnostics) -> anyhow::Result<u64> {
    let catalogue = load_catalogue(&args.indicators, diagnostics)?;
    let mut input = Input::open(&args.events)?;
    let threads = args.threads.unwrap_or_else(default_threads);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, io::stdout().lock());
    let scan = Scan {
        catalogue: &catalogue,
        format: args.format,
        threads,
    };
    let n_matches = scan.run(&mut input, &mut out, diagnostics)?;
    match out.flush() {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(err).context("write to stdout"),
        _ => Ok(n_matches),
    }
}

// ---------------------------------------------------------------------------------------------
// Indicators

/// The compiled index and, by indicator id, each indicator's kind.
struct Catalogue {
    index: Index,
    kinds: Vec<IndicatorKind>,
}

fn load_catalogue(path: &Path, diagnostics: &mut Diagnostics) -> anyhow::Result<Catalogue> {
    let label = path.display().to_string();
    let text = read_indicators(path)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let indicators = if text.trim_start().starts_with('{') {
        stix_indicators(&label, text, diagnostics)?
    } else {
        csv_indicators(&label, text, diagnostics)?
    };
    if indicators.is_empty() {
        bail!("{label}: no valid indicator");
    }
    let kinds = indicators.iter().map(|i| i.value.kind()).collect();
    Ok(Catalogue {
        index: Index::build(indicators),
        kinds,
    })
}

/// The indicators of a STIX 2.1 bundle (`vigil_matcher::parse_bundle`); rejected and revoked
/// ones are warnings.
fn stix_indicators(
    label: &str,
    text: &str,
    diagnostics: &mut Diagnostics,
) -> anyhow::Result<Vec<IndexedIndicator>> {
    let json: Value =
        serde_json::from_str(text).with_context(|| format!("{label}: not a JSON document"))?;
    let import = parse_bundle(&json).with_context(|| label.to_owned())?;
    for rejected in &import.rejected {
        let at = rejected
            .id
            .clone()
            .unwrap_or_else(|| format!("objects[{}]", rejected.index));
        diagnostics.warn_at(label, &at, &format!("skipped: {}", rejected.reason));
    }
    let mut indicators = Vec::new();
    let mut revoked_warned = None;
    for found in import.indicators {
        if found.revoked {
            // One warning per STIX indicator, not per comparison.
            if revoked_warned.as_ref() != Some(&found.source_ref) {
                diagnostics.warn_at(label, &found.source_ref, "skipped: revoked");
                revoked_warned = Some(found.source_ref);
            }
            continue;
        }
        indicators.push(IndexedIndicator {
            id: indicators.len() as u64,
            value: found.value,
            match_subdomains: false,
        });
    }
    Ok(indicators)
}

/// The rows of an indicator CSV (`vigil_matcher::for_each_indicator_row`); invalid rows are
/// warnings. Inactive and expired indicators are left out, as the service's index does.
fn csv_indicators(
    label: &str,
    text: &str,
    diagnostics: &mut Diagnostics,
) -> anyhow::Result<Vec<IndexedIndicator>> {
    let now = Timestamp::now();
    let mut indicators = Vec::new();
    for_each_indicator_row(text, |line, row| match row {
        Ok(new) if !new.is_live(now) => {
            diagnostics.warn(
                label,
                line,
                "skipped: inactive or outside its validity window",
            );
        }
        Ok(new) => indicators.push(IndexedIndicator {
            id: indicators.len() as u64,
            value: new.value,
            match_subdomains: new.match_subdomains,
        }),
        Err(reason) => diagnostics.warn(label, line, &format!("skipped: {reason}")),
    })
    .with_context(|| label.to_owned())?;
    Ok(indicators)
}

fn read_indicators(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(HUNT_INDICATORS_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    if bytes.len() as u64 > HUNT_INDICATORS_BYTES_MAX {
        bail!(
            "{}: larger than {HUNT_INDICATORS_BYTES_MAX} bytes",
            path.display()
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Events

struct Input {
    label: String,
    reader: Box<dyn BufRead>,
}

impl Input {
    fn open(path: &Path) -> anyhow::Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self {
                label: "stdin".to_owned(),
                reader: Box::new(io::stdin().lock()),
            });
        }
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        Ok(Self {
            label: path.display().to_string(),
            reader: Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, file)),
        })
    }
}

/// Event lines stored back to back.
#[derive(Default)]
struct Chunk {
    data: Vec<u8>,
    lines: Vec<LineSpan>,
}

struct LineSpan {
    number: u64,
    start: usize,
    end: usize,
    too_long: bool,
}

/// Up to `n_chunks` chunks; empty at the end of the input. Chunks come from `spare` when it
/// has some: reusing their buffers spares the kernel zeroing fresh pages for every chunk.
fn read_batch(
    reader: &mut dyn BufRead,
    n_lines: &mut u64,
    n_chunks: usize,
    spare: &mut Vec<Chunk>,
) -> io::Result<Vec<Chunk>> {
    let mut batch = Vec::with_capacity(n_chunks);
    while batch.len() < n_chunks {
        let mut chunk = spare.pop().unwrap_or_default();
        chunk.data.clear();
        chunk.lines.clear();
        while chunk.lines.len() < HUNT_CHUNK_LINES && chunk.data.len() < HUNT_CHUNK_BYTES {
            let start = chunk.data.len();
            let Some(too_long) = read_line(reader, &mut chunk.data)? else {
                break;
            };
            *n_lines += 1;
            chunk.lines.push(LineSpan {
                number: *n_lines,
                start,
                end: chunk.data.len(),
                too_long,
            });
        }
        if chunk.lines.is_empty() {
            spare.push(chunk);
            break;
        }
        batch.push(chunk);
    }
    Ok(batch)
}

/// Appends one line to `buf`, without its line break. `None` at the end of the input;
/// `Some(true)` when the line was longer than [`HUNT_LINE_BYTES_MAX`]: then nothing is kept
/// of it.
fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let start = buf.len();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let newline = find_newline(available);
        let part = &available[..newline.unwrap_or(available.len())];
        if !too_long && buf.len() - start + part.len() > HUNT_LINE_BYTES_MAX {
            too_long = true;
            buf.truncate(start);
        }
        if !too_long {
            buf.extend_from_slice(part);
        }
        let used = newline.map_or(part.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if buf.len() > start && buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(any.then_some(too_long))
}

/// The position of the first `\n` in `bytes`, eight bytes at a time (a byte-by-byte search
/// was a tenth of the scan).
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ NEWLINES;
        // The lowest byte flagged here is the first zero byte of x, i.e. the first newline.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let rest = words.remainder();
    rest.iter().position(|b| *b == b'\n').map(|i| offset + i)
}

/// What one worker made of a chunk: formatted output and warnings, in line order.
#[derive(Default)]
struct ChunkOut {
    text: Vec<u8>,
    n_matches: u64,
    warnings: Vec<(u64, String)>,
}

struct Scan<'a> {
    catalogue: &'a Catalogue,
    format: Format,
    threads: usize,
}

impl Scan<'_> {
    /// Matches every event of `input`, writing to `out`; the number of matches. Stops
    /// quietly when `out` is a closed pipe.
    fn run(
        &self,
        input: &mut Input,
        out: &mut impl Write,
        diagnostics: &mut Diagnostics,
    ) -> anyhow::Result<u64> {
        let Input { label, reader } = input;
        let read_error = |err| anyhow::Error::new(err).context(format!("read {label}"));
        let mut n_lines = 0;
        let mut n_matches = 0;
        let mut spare = Vec::new();
        let mut batch =
            read_batch(reader, &mut n_lines, self.threads, &mut spare).map_err(read_error)?;
        while !batch.is_empty() {
            // Read the next batch while the workers match this one.
            let (outs, next) = std::thread::scope(|scope| {
                let workers: Vec<_> = batch
                    .iter()
                    .map(|chunk| scope.spawn(move || self.match_chunk(chunk)))
                    .collect();
                let next = read_batch(reader, &mut n_lines, self.threads, &mut spare);
                let outs: Vec<ChunkOut> = workers
                    .into_iter()
                    .map(|worker| {
                        worker
                            .join()
                            .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    })
                    .collect();
                (outs, next)
            });
            for chunk_out in outs {
                for (line, reason) in &chunk_out.warnings {
                    diagnostics.warn(label, *line, reason);
                }
                n_matches += chunk_out.n_matches;
                match out.write_all(&chunk_out.text) {
                    Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(n_matches),
                    other => other.context("write to stdout")?,
                }
            }
            diagnostics.progress(n_lines, n_matches);
            spare.append(&mut batch);
            batch = next.map_err(read_error)?;
        }
        Ok(n_matches)
    }

    fn match_chunk(&self, chunk: &Chunk) -> ChunkOut {
        let mut out = ChunkOut::default();
        for span in &chunk.lines {
            if span.too_long {
                let reason = format!("skipped: longer than {HUNT_LINE_BYTES_MAX} bytes");
                out.warnings.push((span.number, reason));
                continue;
            }
            let mut bytes = &chunk.data[span.start..span.end];
            if span.number == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(bytes) else {
                out.warnings
                    .push((span.number, "skipped: not UTF-8".to_owned()));
                continue;
            };
            match scan_event(text, true) {
                Ok(scanned) => self.match_event(span.number, scanned, &mut out),
                Err(err) => out.warnings.push((span.number, format!("skipped: {err}"))),
            }
        }
        out
    }

    fn match_event(&self, line: u64, scanned: Scanned, out: &mut ChunkOut) {
        let mut kinds = Vec::new();
        let mut event_id = None;
        for candidate in &scanned.candidates {
            kinds.clear();
            self.catalogue.index.for_each_match(candidate, |id| {
                kinds.push(self.catalogue.kinds[usize::try_from(id).expect("ids are indices")]);
            });
            // Two indicators of one kind (10.0.0.0/8 and 10.1.0.0/16) make one line.
            kinds.sort_unstable();
            kinds.dedup();
            for kind in &kinds {
                let event_id: &str = event_id.get_or_insert_with(|| {
                    scanned.event_id.clone().unwrap_or_else(|| line.to_string())
                });
                let found = Match {
                    event_id,
                    line,
                    field: candidate.field(),
                    value: candidate.value(),
                    indicator_type: kind.as_str(),
                };
                found.write(self.format, &mut out.text);
                out.n_matches += 1;
            }
        }
    }
}

#[derive(Serialize)]
struct Match<'a> {
    event_id: &'a str,
    line: u64,
    field: &'a str,
    value: &'a str,
    indicator_type: &'a str,
}

impl Match<'_> {
    fn write(&self, format: Format, out: &mut Vec<u8>) {
        match format {
            Format::Tsv => {
                for (i, field) in [self.event_id, self.field, self.value, self.indicator_type]
                    .into_iter()
                    .enumerate()
                {
                    if i > 0 {
                        out.push(b'\t');
                    }
                    push_tsv_field(out, field);
                }
            }
            Format::Jsonl => {
                serde_json::to_writer(&mut *out, self).expect("a Vec takes any JSON");
            }
        }
        out.push(b'\n');
    }
}

/// `field` with tabs and line breaks written as `\t`, `\n` and `\r`, so that a match stays one
/// line of four columns. Backslashes are left alone (registry keys are full of them); JSONL is
/// the exact format.
fn push_tsv_field(out: &mut Vec<u8>, field: &str) {
    for byte in field.bytes() {
        match byte {
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            byte => out.push(byte),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stderr

/// Warnings (at most [`HUNT_WARNINGS_MAX`] printed) and, on a terminal, a progress line
/// (indicatif, redrawn at most every [`PROGRESS_INTERVAL`], cleared around each warning and
/// at the end so that stderr keeps only the warnings).
struct Diagnostics {
    bar: ProgressBar,
    n_warnings: u64,
}

impl Diagnostics {
    fn new(progress: bool) -> Self {
        let bar = if progress {
            let hz = u8::try_from(1_000 / PROGRESS_INTERVAL.as_millis().max(1)).unwrap_or(u8::MAX);
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(hz));
            bar.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Self { bar, n_warnings: 0 }
    }

    /// `vigil hunt: SOURCE:LINE: REASON`.
    fn warn(&mut self, source: &str, line: u64, reason: &str) {
        self.emit(format_args!("{source}:{line}: {reason}"));
    }

    /// `vigil hunt: SOURCE: OBJECT: REASON`, for an object of a STIX bundle.
    fn warn_at(&mut self, source: &str, object: &str, reason: &str) {
        self.emit(format_args!("{source}: {object}: {reason}"));
    }

    fn emit(&mut self, warning: fmt::Arguments<'_>) {
        self.n_warnings += 1;
        if self.n_warnings <= HUNT_WARNINGS_MAX {
            self.bar.suspend(|| eprintln!("vigil hunt: {warning}"));
        }
    }

    fn progress(&mut self, n_lines: u64, n_matches: u64) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar
            .set_message(format!("{n_lines} lines, {n_matches} matches"));
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
        if self.n_warnings > HUNT_WARNINGS_MAX {
            let n_more = self.n_warnings - HUNT_WARNINGS_MAX;
            eprintln!("vigil hunt: {n_more} more warnings not shown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_are_found_where_they_are() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes = vec![b'x'; len];
                if at < len {
                    bytes[at] = b'\n';
                    if at + 3 < len {
                        bytes[at + 3] = b'\n';
                    }
                }
                let expected = bytes.iter().position(|b| *b == b'\n');
                assert_eq!(find_newline(&bytes), expected, "{len} {at}");
            }
        }
        assert_eq!(
            find_newline("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\n".as_bytes()),
            Some(10)
        );
    }

    #[test]
    fn tsv_fields_stay_on_one_line() {
        let mut out = Vec::new();
        push_tsv_field(&mut out, "a\tb\nc\r\\d");
        assert_eq!(out, b"a\\tb\\nc\\r\\d");
    }

    #[test]
    fn event_ids_prefer_event_id_then_id_then_line() {
        let id = |event: Value| {
            scan_event(&event.to_string(), true)
                .unwrap()
                .event_id
                .unwrap_or_else(|| "7".to_owned())
        };
        assert_eq!(
            id(serde_json::json!({"event": {"id": "e1"}, "id": "x"})),
            "e1"
        );
        assert_eq!(id(serde_json::json!({"event.id": "e2"})), "e2");
        assert_eq!(id(serde_json::json!({"id": 42})), "42");
        assert_eq!(id(serde_json::json!({"id": ""})), "7");
        assert_eq!(id(serde_json::json!({"event": "x"})), "7");
    }
}
