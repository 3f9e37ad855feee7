//! Index benchmark: how long a catalogue takes to parse and compile, how much memory the
//! compiled [`Index`] holds per indicator, and how many candidates it answers per second. Not a
//! test: run it by hand; it prints plain text.
//!
//! ```text
//! cargo bench -p vigil-matcher --bench index                    # 1,000,000 indicators
//! INDICATORS=100000 cargo bench -p vigil-matcher --bench index
//! ```
//!
//! The catalogue is deterministic: 35% IPv4, 30% domains (one in ten matching subdomains), 20%
//! SHA-256, 15% MD5 and one CIDR (/24 or /16) in about 10,000. Lookups probe as many
//! candidates as there are indicators (at most a million), half of them hits, first mixed and
//! then kind by kind.
//!
//! Memory is the growth of the process's anonymous resident memory (`RssAnon` in
//! /proc/self/status, Linux only) while the index is built from a streamed parse, so allocator
//! overhead counts. A counting `#[global_allocator]` would need `unsafe impl GlobalAlloc`,
//! which the workspace's `unsafe_code = "forbid"` rules out.

use std::hint::black_box;
use std::time::{Duration, Instant};

use vigil_domain::{IndicatorKind, IndicatorValue};
use vigil_matcher::{Candidate, Index, IndexedIndicator};

const INDICATORS_DEFAULT: usize = 1_000_000;
const PROBES_MAX: usize = 1_000_000;
/// Every lookup measurement runs at least this long, and at least three rounds.
const LOOKUP_TIME_MIN: Duration = Duration::from_millis(500);
const CIDR_EVERY: usize = 9973;
/// One domain in this many matches its subdomains.
const SUBDOMAINS_EVERY: usize = 10;
const HOSTS: [&str; 8] = [
    "cdn", "api", "update", "login", "mail", "sync", "static", "auth",
];
const WORDS: [&str; 8] = [
    "darkpanda",
    "evilcorp",
    "stormbyte",
    "malnet",
    "phishy",
    "c2relay",
    "ransomx",
    "botfarm",
];
const TLDS: [&str; 6] = ["com", "net", "org", "info", "xyz", "top"];
const KINDS: [IndicatorKind; 5] = [
    IndicatorKind::Ipv4,
    IndicatorKind::Domain,
    IndicatorKind::Sha256,
    IndicatorKind::Md5,
    IndicatorKind::Cidr,
];

/// SplitMix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.next() % items.len() as u64).expect("small")]
    }
}

/// An indicator as a feed spells it.
struct Raw {
    kind: IndicatorKind,
    text: String,
    match_subdomains: bool,
}

/// The kind of the `i`th indicator (CIDRs aside), in the 35/30/20/15 mix.
fn kind_at(i: usize) -> IndicatorKind {
    match i % 20 {
        0..7 => IndicatorKind::Ipv4,
        7..13 => IndicatorKind::Domain,
        13..17 => IndicatorKind::Sha256,
        _ => IndicatorKind::Md5,
    }
}

/// An address whose first octet is 1-126 when `bad`, 128-223 otherwise: misses never hit.
fn ipv4_bits(rng: &mut Rng, bad: bool) -> [u8; 4] {
    let [first, rest @ ..] = ((rng.next() >> 32) as u32).to_be_bytes();
    let first = if bad {
        1 + first % 126
    } else {
        128 + first % 96
    };
    [first, rest[0], rest[1], rest[2]]
}

fn ipv4_text(rng: &mut Rng, bad: bool) -> String {
    let [a, b, c, d] = ipv4_bits(rng, bad);
    format!("{a}.{b}.{c}.{d}")
}

fn hex_text(rng: &mut Rng, words: usize) -> String {
    (0..words).map(|_| format!("{:016x}", rng.next())).collect()
}

fn raw_indicator(i: usize, rng: &mut Rng) -> Raw {
    let raw = |kind, text, match_subdomains| Raw {
        kind,
        text,
        match_subdomains,
    };
    if i % CIDR_EVERY == CIDR_EVERY - 1 {
        let [a, b, c, _] = ipv4_bits(rng, true);
        let text = if (i / CIDR_EVERY) % 2 == 0 {
            format!("{a}.{b}.{c}.0/24")
        } else {
            format!("{a}.{b}.0.0/16")
        };
        return raw(IndicatorKind::Cidr, text, false);
    }
    match kind_at(i) {
        IndicatorKind::Ipv4 => raw(IndicatorKind::Ipv4, ipv4_text(rng, true), false),
        IndicatorKind::Domain => {
            let (host, w1, w2, tld) = (
                rng.pick(&HOSTS),
                rng.pick(&WORDS),
                rng.pick(&WORDS),
                rng.pick(&TLDS),
            );
            let subdomains = (i / 20) % SUBDOMAINS_EVERY == 0;
            let text = format!("{host}{i:x}.{w1}-{w2}.{tld}");
            raw(IndicatorKind::Domain, text, subdomains)
        }
        IndicatorKind::Sha256 => raw(IndicatorKind::Sha256, hex_text(rng, 4), false),
        _ => raw(IndicatorKind::Md5, hex_text(rng, 2), false),
    }
}

fn parse(id: usize, raw: &Raw) -> IndexedIndicator {
    IndexedIndicator {
        id: id as u64,
        value: IndicatorValue::parse(raw.kind, &raw.text).expect("generated values are valid"),
        match_subdomains: raw.match_subdomains,
    }
}

/// The process's anonymous resident memory, in bytes (Linux).
fn rss_anon() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64() / 1e6
}

fn generate(n: usize) -> Vec<Raw> {
    let start = Instant::now();
    let mut rng = Rng(0x5eed_0001);
    let raws: Vec<Raw> = (0..n).map(|i| raw_indicator(i, &mut rng)).collect();
    let counts: Vec<String> = KINDS
        .iter()
        .map(|kind| {
            let count = raws.iter().filter(|raw| raw.kind == *kind).count();
            format!("{kind} {count}")
        })
        .collect();
    let subdomains = raws.iter().filter(|raw| raw.match_subdomains).count();
    println!(
        "catalogue: {n} indicators ({}; {subdomains} domains match subdomains), generated in {:.3} s",
        counts.join(", "),
        start.elapsed().as_secs_f64()
    );
    raws
}

/// Builds an index from a streamed parse on fresh memory and reports the memory it holds.
fn measure_memory(raws: &[Raw]) {
    let before = rss_anon();
    let start = Instant::now();
    let index = Index::build(raws.iter().enumerate().map(|(i, raw)| parse(i, raw)));
    let elapsed = start.elapsed();
    let after = rss_anon();
    println!(
        "parse + build, streamed, fresh memory: {:.3} s ({:.2} M indicators/s)",
        elapsed.as_secs_f64(),
        per_second(raws.len(), elapsed)
    );
    match before.zip(after) {
        Some((before, after)) => {
            let grown = after.saturating_sub(before);
            println!(
                "resident bytes per indicator: {:.1} (RssAnon grew {:.1} MiB for {} indicators)",
                grown as f64 / raws.len() as f64,
                grown as f64 / f64::from(1 << 20),
                index.len()
            );
        }
        None => println!("resident bytes per indicator: n/a (no /proc/self/status)"),
    }
}

/// Parses, then builds, each timed on its own; the index.
fn measure_parse_and_build(raws: &[Raw]) -> Index {
    let start = Instant::now();
    let parsed: Vec<IndexedIndicator> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| parse(i, raw))
        .collect();
    let elapsed = start.elapsed();
    println!(
        "parse (IndicatorValue::parse): {:.3} s ({:.2} M values/s)",
        elapsed.as_secs_f64(),
        per_second(raws.len(), elapsed)
    );
    let start = Instant::now();
    let index = Index::build(parsed);
    let elapsed = start.elapsed();
    println!(
        "build (Index::build): {:.3} s ({:.2} M indicators/s)",
        elapsed.as_secs_f64(),
        per_second(index.len(), elapsed)
    );
    index
}

fn field_of(kind: IndicatorKind) -> &'static str {
    match kind {
        IndicatorKind::Ipv4 => "destination.ip",
        IndicatorKind::Domain => "dns.question.name",
        IndicatorKind::Sha256 => "file.hash.sha256",
        _ => "file.hash.md5",
    }
}

fn candidate(kind: IndicatorKind, text: &str) -> Candidate {
    let value = IndicatorValue::parse(kind, text).expect("generated values are valid");
    Candidate::new(field_of(kind), value)
}

/// A candidate that matches `raw`: the value itself, or a subdomain of a domain that matches
/// subdomains.
fn hit(raw: &Raw) -> Candidate {
    if raw.match_subdomains {
        candidate(raw.kind, &format!("www.{}", raw.text))
    } else {
        candidate(raw.kind, &raw.text)
    }
}

/// A candidate of the `i`th kind in the mix that matches nothing.
fn miss(i: usize, rng: &mut Rng) -> Candidate {
    let kind = kind_at(i);
    let text = match kind {
        IndicatorKind::Ipv4 => ipv4_text(rng, false),
        IndicatorKind::Domain => format!("www.site{i:x}.{}-benign.de", rng.pick(&WORDS)),
        IndicatorKind::Sha256 => hex_text(rng, 4),
        _ => hex_text(rng, 2),
    };
    candidate(kind, &text)
}

/// Half hits, half misses, shuffled; as many as there are indicators, at most
/// [`PROBES_MAX`].
fn probes(raws: &[Raw]) -> Vec<Candidate> {
    let n_hits = raws.len().min(PROBES_MAX) / 2;
    let stride = (raws.len() / n_hits.max(1)).max(1);
    let mut rng = Rng(0x5eed_0002);
    let mut probes: Vec<Candidate> = raws
        .iter()
        .step_by(stride)
        .filter(|raw| raw.kind != IndicatorKind::Cidr)
        .take(n_hits)
        .map(hit)
        .collect();
    probes.extend((0..n_hits).map(|i| miss(i, &mut rng)));
    for i in (1..probes.len()).rev() {
        let j = usize::try_from(rng.next() % (i as u64 + 1)).expect("an index");
        probes.swap(i, j);
    }
    probes
}

/// Probes `candidates` for at least [`LOOKUP_TIME_MIN`] and three rounds; prints the rate.
fn measure_lookups(index: &Index, label: &str, candidates: &[Candidate]) {
    let start = Instant::now();
    let mut rounds = 0;
    let mut n_matches = 0_u64;
    while rounds < 3 || start.elapsed() < LOOKUP_TIME_MIN {
        n_matches = 0;
        for candidate in candidates {
            index.for_each_match(black_box(candidate), |id| {
                n_matches += 1;
                black_box(id);
            });
        }
        rounds += 1;
    }
    let elapsed = start.elapsed();
    println!(
        "lookup {label}: {} probes x {rounds} rounds, {:.2} M probes/s ({:.0} ns/probe), {n_matches} matches/round",
        candidates.len(),
        per_second(candidates.len() * rounds, elapsed),
        elapsed.as_nanos() as f64 / (candidates.len() * rounds) as f64
    );
}

fn main() {
    let n = std::env::var("INDICATORS")
        .ok()
        .map_or(INDICATORS_DEFAULT, |raw| {
            raw.parse().expect("INDICATORS: a positive number")
        })
        .max(1);
    let raws = generate(n);
    measure_memory(&raws);
    let index = measure_parse_and_build(&raws);
    let probes = probes(&raws);
    measure_lookups(&index, "mixed, 50% hits", &probes);
    let labels = [
        "ipv4 (exact, then one probe per CIDR prefix length)",
        "domain (exact, then one probe per label suffix)",
        "sha256",
        "md5",
    ];
    for (kind, label) in KINDS.iter().zip(labels) {
        let of_kind: Vec<Candidate> = probes
            .iter()
            .filter(|probe| probe.indicator_value().kind() == *kind)
            .cloned()
            .collect();
        measure_lookups(&index, label, &of_kind);
    }
}
