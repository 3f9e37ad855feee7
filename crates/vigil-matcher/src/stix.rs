//! STIX 2.1 bundles: the simple-pattern subset of their indicators.
//!
//! [`parse_bundle`] keeps the `indicator` objects of a bundle and skips (counting them) every
//! other object type. An indicator is imported when its `pattern_type` is `stix` (the default)
//! and its pattern is made only of `object:path = 'string'` comparisons joined by `OR`, inside
//! one `[...]` or across several (`[a = 'x' OR b = 'y']`, `[a = 'x'] OR [b = 'y']`,
//! parentheses allowed). Each comparison becomes one [`StixIndicator`], all with the STIX id as
//! `source_ref`. Anything else (`AND`, `FOLLOWEDBY`, `MATCHES`, `LIKE`, `IN`, `!=`, qualifiers,
//! non-string literals, unknown object paths, values `IndicatorValue::parse` refuses) rejects
//! the **whole** indicator with a reason: an indicator is never partially imported, and a
//! rejection never stops the rest of the bundle.
//!
//! Object paths and the kinds they give: `ipv4-addr:value` (ipv4, or cidr with a `/`),
//! `ipv6-addr:value` (ipv6, or cidr), `domain-name:value`, `url:value`, `email-addr:value`,
//! `file:hashes.MD5` / `.'SHA-1'` / `.'SHA-256'` (also `SHA1`, `SHA256`, quoted or not),
//! `file:name`, `windows-registry-key:key`.

use std::fmt;

use serde_json::{Map, Value};

use crate::BundleObject;
use vigil_domain::{IndicatorKind, IndicatorValue};

/// Most objects one bundle may hold; a larger bundle is refused as a whole.
pub const STIX_OBJECTS_MAX: usize = 1_000_000;
/// Longest pattern looked at, in bytes; a longer one rejects its indicator.
pub const STIX_PATTERN_LEN_MAX: usize = 10_000;
/// Most comparisons in one pattern; more reject the indicator.
pub const STIX_COMPARISONS_MAX: usize = 256;
/// Deepest nesting of parentheses in one pattern; deeper rejects the indicator.
pub const STIX_PATTERN_DEPTH_MAX: usize = 32;

/// One atomic indicator taken from a STIX indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StixIndicator {
    pub value: IndicatorValue,
    /// The STIX id (`indicator--<uuid>`).
    pub source_ref: String,
    /// RFC 3339, as given.
    pub valid_from: Option<String>,
    /// RFC 3339, as given.
    pub valid_until: Option<String>,
    /// Reported as given; the caller decides what a revoked indicator means.
    pub revoked: bool,
    pub confidence: Option<u8>,
}

/// An object of the bundle that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StixRejected {
    /// The object's `id`, when it has a string one.
    pub id: Option<String>,
    /// The object's position in `objects`.
    pub index: usize,
    pub reason: String,
}

/// What a bundle gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StixImport {
    pub indicators: Vec<StixIndicator>,
    pub rejected: Vec<StixRejected>,
    /// Objects of another type than `indicator` (identities, marking definitions, …).
    pub skipped_other: usize,
}

/// Why a document is not a bundle this importer reads at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StixError {
    NotAnObject,
    NotABundle,
    NoObjects,
    TooManyObjects(usize),
    /// The text is not JSON (serde's message, with line and column).
    NotJson(String),
}

impl fmt::Display for StixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StixError::NotAnObject => f.write_str("a STIX bundle must be a JSON object"),
            StixError::NotABundle => f.write_str("not a STIX bundle: \"type\" is not \"bundle\""),
            StixError::NoObjects => f.write_str("STIX bundle without an \"objects\" array"),
            StixError::TooManyObjects(n) if *n > STIX_OBJECTS_MAX + 1 => write!(
                f,
                "STIX bundle with {n} objects; at most {STIX_OBJECTS_MAX} are read"
            ),
            StixError::TooManyObjects(_) => write!(
                f,
                "STIX bundle with more than {STIX_OBJECTS_MAX} objects; at most that many are read"
            ),
            StixError::NotJson(reason) => write!(f, "not JSON: {reason}"),
        }
    }
}

impl std::error::Error for StixError {}

/// Reads the indicators of a STIX 2.1 bundle (see the module documentation for the subset).
pub fn parse_bundle(json: &Value) -> Result<StixImport, StixError> {
    let bundle = json.as_object().ok_or(StixError::NotAnObject)?;
    if bundle.get("type").and_then(Value::as_str) != Some("bundle") {
        return Err(StixError::NotABundle);
    }
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or(StixError::NoObjects)?;
    if objects.len() > STIX_OBJECTS_MAX {
        return Err(StixError::TooManyObjects(objects.len()));
    }
    let mut import = StixImport::default();
    for (index, object) in objects.iter().enumerate() {
        import.add(classify_object(index, object));
    }
    Ok(import)
}

/// [`parse_bundle`] over the bundle's text, streaming (see `for_each_bundle_object`).
pub fn parse_bundle_text(text: &str) -> Result<StixImport, StixError> {
    let mut import = StixImport::default();
    crate::for_each_bundle_object(text, |object| import.add(object))?;
    Ok(import)
}

impl StixImport {
    fn add(&mut self, object: BundleObject) {
        match object {
            BundleObject::Indicators(mut atoms) => self.indicators.append(&mut atoms),
            BundleObject::Rejected(rejected) => self.rejected.push(rejected),
            BundleObject::Other => self.skipped_other += 1,
        }
    }
}

/// What one object of a bundle (at `index` in `objects`) gives.
pub(crate) fn classify_object(index: usize, object: &Value) -> BundleObject {
    let Some(object) = object.as_object() else {
        return BundleObject::Rejected(StixRejected {
            id: None,
            index,
            reason: "not a JSON object".to_owned(),
        });
    };
    let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
    match object.get("type").and_then(Value::as_str) {
        Some("indicator") => {}
        Some(_) => return BundleObject::Other,
        None => {
            let reason = "no string \"type\"".to_owned();
            return BundleObject::Rejected(StixRejected { id, index, reason });
        }
    }
    match indicator(object) {
        Ok(atoms) => BundleObject::Indicators(atoms),
        Err(reason) => BundleObject::Rejected(StixRejected { id, index, reason }),
    }
}

/// The atomic indicators of one STIX `indicator` object (as a TAXII collection or an
/// OpenCTI export serves it), or why it is rejected.
pub fn parse_indicator(object: &Value) -> Result<Vec<StixIndicator>, String> {
    let object = object.as_object().ok_or("not a JSON object")?;
    match object.get("type").and_then(Value::as_str) {
        Some("indicator") => indicator(object),
        Some(other) => Err(format!("a {other:?} object, not an indicator")),
        None => Err("no string \"type\"".to_owned()),
    }
}

/// The atomic indicators of one STIX indicator object, or why it is rejected.
fn indicator(object: &Map<String, Value>) -> Result<Vec<StixIndicator>, String> {
    let source_ref = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or("no string \"id\"")?
        .to_owned();
    match object.get("pattern_type") {
        None => {}
        Some(Value::String(kind)) if kind == "stix" => {}
        Some(Value::String(kind)) => {
            return Err(format!(
                "pattern_type {kind:?} is not supported (only \"stix\")"
            ));
        }
        Some(_) => return Err("\"pattern_type\" is not a string".to_owned()),
    }
    let pattern = object
        .get("pattern")
        .and_then(Value::as_str)
        .ok_or("no string \"pattern\"")?;
    let valid_from = optional_string(object, "valid_from")?;
    let valid_until = optional_string(object, "valid_until")?;
    let revoked = match object.get("revoked") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(revoked)) => *revoked,
        Some(_) => return Err("\"revoked\" is not a boolean".to_owned()),
    };
    let confidence = match object.get("confidence") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| *n <= 100)
                .ok_or("\"confidence\" is not an integer from 0 to 100")?,
        ),
    };
    let comparisons = parse_pattern(pattern).map_err(|reason| format!("pattern: {reason}"))?;
    let mut atoms = Vec::with_capacity(comparisons.len());
    for comparison in comparisons {
        atoms.push(StixIndicator {
            value: comparison.value()?,
            source_ref: source_ref.clone(),
            valid_from: valid_from.clone(),
            valid_until: valid_until.clone(),
            revoked,
            confidence,
        });
    }
    Ok(atoms)
}

fn optional_string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("{key:?} is not a string")),
    }
}

// ---------------------------------------------------------------------------------------------
// Patterns

/// `object:path = 'literal'`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparison {
    object: String,
    /// Property names, quotes removed.
    path: Vec<String>,
    literal: String,
}

impl Comparison {
    fn path_text(&self) -> String {
        format!("{}:{}", self.object, self.path.join("."))
    }

    fn kind(&self) -> Option<IndicatorKind> {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        let cidr = self.literal.contains('/');
        Some(match (self.object.as_str(), path.as_slice()) {
            ("ipv4-addr", ["value"]) if cidr => IndicatorKind::Cidr,
            ("ipv4-addr", ["value"]) => IndicatorKind::Ipv4,
            ("ipv6-addr", ["value"]) if cidr => IndicatorKind::Cidr,
            ("ipv6-addr", ["value"]) => IndicatorKind::Ipv6,
            ("domain-name", ["value"]) => IndicatorKind::Domain,
            ("url", ["value"]) => IndicatorKind::Url,
            ("email-addr", ["value"]) => IndicatorKind::Email,
            ("file", ["name"]) => IndicatorKind::FileName,
            ("windows-registry-key", ["key"]) => IndicatorKind::RegistryKey,
            ("file", ["hashes", hash]) => match hash.to_ascii_uppercase().as_str() {
                "MD5" => IndicatorKind::Md5,
                "SHA-1" | "SHA1" => IndicatorKind::Sha1,
                "SHA-256" | "SHA256" => IndicatorKind::Sha256,
                _ => return None,
            },
            _ => return None,
        })
    }

    fn value(&self) -> Result<IndicatorValue, String> {
        let kind = self.kind().ok_or_else(|| {
            format!(
                "pattern: object path {} is not supported (only ipv4-addr:value, \
                 ipv6-addr:value, domain-name:value, url:value, email-addr:value, \
                 file:hashes.MD5/'SHA-1'/'SHA-256', file:name, windows-registry-key:key)",
                self.path_text()
            )
        })?;
        IndicatorValue::parse(kind, &self.literal)
            .map_err(|err| format!("{}: {err}", self.path_text()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    /// `type:prop.prop`.
    Path(String, Vec<String>),
    /// A keyword or any other bare word.
    Word(String),
    Op(&'static str),
    Str(String),
    /// A literal that is not a plain string: number, `t'…'`, `h'…'`, `b'…'`.
    OtherLiteral(&'static str),
}

/// The comparisons of a pattern in the supported subset, or why it is not.
fn parse_pattern(pattern: &str) -> Result<Vec<Comparison>, String> {
    if pattern.len() > STIX_PATTERN_LEN_MAX {
        return Err(format!("longer than {STIX_PATTERN_LEN_MAX} bytes"));
    }
    let tokens = lex(pattern)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        comparisons: Vec::new(),
    };
    parser.observations(0)?;
    if let Some(token) = parser.peek() {
        return Err(parser.unexpected(token, "after the last observation"));
    }
    if parser.comparisons.is_empty() {
        return Err("no comparison".to_owned());
    }
    Ok(parser.comparisons)
}

fn lex(pattern: &str) -> Result<Vec<Token>, String> {
    let mut chars = pattern.chars().peekable();
    let mut tokens = Vec::new();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '/' => {
                chars.next();
                skip_comment(&mut chars)?;
            }
            '[' | ']' | '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '[' => Token::Open,
                    ']' => Token::Close,
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    _ => Token::Comma,
                });
            }
            '\'' => {
                chars.next();
                tokens.push(Token::Str(string_literal(&mut chars)?));
            }
            '=' | '!' | '<' | '>' => tokens.push(Token::Op(operator(&mut chars)?)),
            '-' | '+' | '0'..='9' => {
                while chars
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                {
                    chars.next();
                }
                tokens.push(Token::OtherLiteral("a number"));
            }
            c if c.is_ascii_alphabetic() || c == '_' => tokens.push(word(&mut chars)?),
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok(tokens)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After a `/`: a `/* … */` or `// …` comment.
fn skip_comment(chars: &mut Chars<'_>) -> Result<(), String> {
    match chars.next() {
        Some('/') => {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            Ok(())
        }
        Some('*') => {
            let mut star = false;
            for c in chars.by_ref() {
                if star && c == '/' {
                    return Ok(());
                }
                star = c == '*';
            }
            Err("unterminated comment".to_owned())
        }
        _ => Err("unexpected character '/'".to_owned()),
    }
}

/// After the opening `'`: the literal's text, with `\'` and `\\` unescaped.
fn string_literal(chars: &mut Chars<'_>) -> Result<String, String> {
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string literal".to_owned()),
            Some('\'') => return Ok(text),
            Some('\\') => match chars.next() {
                Some(c @ ('\'' | '\\')) => text.push(c),
                Some(c) => return Err(format!("invalid escape \\{c} in a string literal")),
                None => return Err("unterminated string literal".to_owned()),
            },
            Some(c) => text.push(c),
        }
    }
}

fn operator(chars: &mut Chars<'_>) -> Result<&'static str, String> {
    let first = chars.next();
    let second = chars.peek().copied();
    let (op, two) = match (first, second) {
        (Some('='), Some('=')) => ("=", true),
        (Some('='), _) => ("=", false),
        (Some('!'), Some('=')) => ("!=", true),
        (Some('<'), Some('>')) => ("<>", true),
        (Some('<'), Some('=')) => ("<=", true),
        (Some('<'), _) => ("<", false),
        (Some('>'), Some('=')) => (">=", true),
        (Some('>'), _) => (">", false),
        _ => return Err("unexpected character '!'".to_owned()),
    };
    if two {
        chars.next();
    }
    Ok(op)
}

/// A bare word, an object path (`type:prop.'quoted'.prop`) or a typed literal (`t'…'`).
fn word(chars: &mut Chars<'_>) -> Result<Token, String> {
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            break;
        }
        name.push(c);
        chars.next();
    }
    match chars.peek() {
        Some('\'') if matches!(name.as_str(), "t" | "h" | "b") => {
            chars.next();
            string_literal(chars)?;
            let what = match name.as_str() {
                "t" => "a timestamp literal",
                "h" => "a hex literal",
                _ => "a binary literal",
            };
            Ok(Token::OtherLiteral(what))
        }
        Some(':') => {
            chars.next();
            Ok(Token::Path(name, property_path(chars)?))
        }
        _ => Ok(Token::Word(name)),
    }
}

/// After `type:`: property names separated by `.`, each bare or single-quoted.
fn property_path(chars: &mut Chars<'_>) -> Result<Vec<String>, String> {
    let mut path = Vec::new();
    loop {
        let mut name = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            name = string_literal(chars)?;
        } else {
            while let Some(&c) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    break;
                }
                name.push(c);
                chars.next();
            }
        }
        if name.is_empty() {
            return Err("empty property name in an object path".to_owned());
        }
        path.push(name);
        match chars.peek() {
            Some('.') => {
                chars.next();
            }
            Some('[') => return Err("list indexes in object paths are not supported".to_owned()),
            _ => return Ok(path),
        }
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    comparisons: Vec<Comparison>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.pos);
        self.pos += 1;
        token
    }

    /// `observation (OR observation)*`.
    fn observations(&mut self, depth: usize) -> Result<(), String> {
        loop {
            self.observation(depth)?;
            self.qualifier_check()?;
            match self.peek() {
                Some(Token::Word(word)) if word == "OR" => {
                    self.pos += 1;
                }
                Some(Token::Word(word)) if word == "AND" => {
                    return Err("AND between observations is not supported (only OR)".to_owned());
                }
                Some(Token::Word(word)) if word == "FOLLOWEDBY" => {
                    return Err("FOLLOWEDBY is not supported (only OR)".to_owned());
                }
                _ => return Ok(()),
            }
        }
    }

    /// `[comparisons]` or `(observations)`.
    fn observation(&mut self, depth: usize) -> Result<(), String> {
        match self.next().cloned() {
            Some(Token::Open) => {
                self.comparisons_or(depth)?;
                match self.next().cloned() {
                    Some(Token::Close) => Ok(()),
                    Some(token) => Err(self.unexpected(&token, "where ']' was expected")),
                    None => Err("missing ']'".to_owned()),
                }
            }
            Some(Token::LParen) => {
                let depth = nest(depth)?;
                self.observations(depth)?;
                self.close_paren()
            }
            Some(token) => Err(self.unexpected(&token, "where '[' was expected")),
            None => Err("missing observation".to_owned()),
        }
    }

    /// Refuses `WITHIN`, `REPEATS`, `START`/`STOP` after an observation.
    fn qualifier_check(&self) -> Result<(), String> {
        match self.peek() {
            Some(Token::Word(word)) if matches!(word.as_str(), "WITHIN" | "REPEATS" | "START") => {
                Err(format!("qualifier {word} is not supported"))
            }
            _ => Ok(()),
        }
    }

    /// `comparison (OR comparison)*` inside `[ ]`.
    fn comparisons_or(&mut self, depth: usize) -> Result<(), String> {
        loop {
            self.comparison(depth)?;
            match self.peek() {
                Some(Token::Word(word)) if word == "OR" => {
                    self.pos += 1;
                }
                Some(Token::Word(word)) if word == "AND" => {
                    return Err("AND inside an observation is not supported (only OR)".to_owned());
                }
                _ => return Ok(()),
            }
        }
    }

    /// `path = 'string'` or `(comparisons)`.
    fn comparison(&mut self, depth: usize) -> Result<(), String> {
        let (object, path) = match self.next().cloned() {
            Some(Token::LParen) => {
                let depth = nest(depth)?;
                self.comparisons_or(depth)?;
                return self.close_paren();
            }
            Some(Token::Path(object, path)) => (object, path),
            Some(token) => return Err(self.unexpected(&token, "where an object path was expected")),
            None => return Err("missing comparison".to_owned()),
        };
        match self.next().cloned() {
            Some(Token::Op("=")) => {}
            Some(Token::Op(op)) => {
                return Err(format!("operator {op} is not supported (only =)"));
            }
            Some(Token::Word(word)) => {
                return Err(format!("operator {word} is not supported (only =)"));
            }
            Some(token) => return Err(self.unexpected(&token, "where '=' was expected")),
            None => return Err("missing operator".to_owned()),
        }
        let literal = match self.next().cloned() {
            Some(Token::Str(literal)) => literal,
            Some(Token::OtherLiteral(what)) => {
                return Err(format!(
                    "{what} is not supported (only single-quoted strings)"
                ));
            }
            Some(token) => return Err(self.unexpected(&token, "where a string was expected")),
            None => return Err("missing value".to_owned()),
        };
        if self.comparisons.len() >= STIX_COMPARISONS_MAX {
            return Err(format!("more than {STIX_COMPARISONS_MAX} comparisons"));
        }
        self.comparisons.push(Comparison {
            object,
            path,
            literal,
        });
        Ok(())
    }

    fn close_paren(&mut self) -> Result<(), String> {
        match self.next().cloned() {
            Some(Token::RParen) => Ok(()),
            Some(token) => Err(self.unexpected(&token, "where ')' was expected")),
            None => Err("missing ')'".to_owned()),
        }
    }

    fn unexpected(&self, token: &Token, place: &str) -> String {
        let what = match token {
            Token::Open => "'['".to_owned(),
            Token::Close => "']'".to_owned(),
            Token::LParen => "'('".to_owned(),
            Token::RParen => "')'".to_owned(),
            Token::Comma => "','".to_owned(),
            Token::Path(object, path) => format!("object path {object}:{}", path.join(".")),
            Token::Word(word) if matches!(word.as_str(), "AND" | "FOLLOWEDBY" | "NOT") => {
                return format!("{word} is not supported (only OR)");
            }
            Token::Word(word) => format!("word {word:?}"),
            Token::Op(op) => format!("operator {op}"),
            Token::Str(_) => "a string".to_owned(),
            Token::OtherLiteral(what) => (*what).to_owned(),
        };
        format!("unexpected {what} {place}")
    }
}

fn nest(depth: usize) -> Result<usize, String> {
    if depth >= STIX_PATTERN_DEPTH_MAX {
        return Err(format!(
            "parentheses nested deeper than {STIX_PATTERN_DEPTH_MAX}"
        ));
    }
    Ok(depth + 1)
}
