//! The STIX 2.1 pattern language, the subset Vigil matches: `object:path = 'string'`
//! comparisons joined by `OR`, inside one `[...]` or across several, parentheses allowed.
//! Anything else is a [`PatternError`] saying what is not supported, or where the text stops
//! being a pattern.

use std::fmt;

use vigil_domain::{IndicatorKind, IndicatorValue};

use crate::stix::{
    ObjectError, STIX_COMPARISONS_MAX, STIX_PATTERN_DEPTH_MAX, STIX_PATTERN_LEN_MAX,
};

/// Why a pattern is outside the subset Vigil matches, or not a pattern at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Longer than `STIX_PATTERN_LEN_MAX` bytes.
    TooLong,
    /// Parentheses nested deeper than `STIX_PATTERN_DEPTH_MAX`.
    TooDeep,
    /// More than `STIX_COMPARISONS_MAX` comparisons.
    TooManyComparisons,
    /// Nothing to compare.
    NoComparison,
    /// A character the language does not have here.
    Character(char),
    /// A comment or a string literal that never ends.
    Unterminated(&'static str),
    /// A backslash before anything but `'` or `\` in a string literal.
    Escape(char),
    /// `type:` or `a..b` in an object path.
    EmptyProperty,
    /// A valid construct Vigil does not match (`AND`, `!=`, a qualifier, a number), with
    /// what it does match instead, when there is one thing to say.
    Unsupported {
        what: String,
        only: Option<&'static str>,
    },
    /// An object path that gives no indicator type Vigil keeps.
    ObjectPath(String),
    /// A token where another was expected.
    Unexpected { found: String, place: &'static str },
    /// The pattern ends where this was expected.
    Missing(&'static str),
}

const ONLY_OR: Option<&str> = Some("OR");
const ONLY_EQUALS: Option<&str> = Some("=");

impl PatternError {
    fn unsupported(what: impl Into<String>, only: Option<&'static str>) -> Self {
        PatternError::Unsupported {
            what: what.into(),
            only,
        }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::TooLong => write!(f, "longer than {STIX_PATTERN_LEN_MAX} bytes"),
            PatternError::TooDeep => {
                write!(f, "parentheses nested deeper than {STIX_PATTERN_DEPTH_MAX}")
            }
            PatternError::TooManyComparisons => {
                write!(f, "more than {STIX_COMPARISONS_MAX} comparisons")
            }
            PatternError::NoComparison => f.write_str("no comparison"),
            PatternError::Character(c) => write!(f, "unexpected character {c:?}"),
            PatternError::Unterminated(what) => write!(f, "unterminated {what}"),
            PatternError::Escape(c) => write!(f, "invalid escape \\{c} in a string literal"),
            PatternError::EmptyProperty => f.write_str("empty property name in an object path"),
            PatternError::Unsupported { what, only: None } => write!(f, "{what} is not supported"),
            PatternError::Unsupported {
                what,
                only: Some(only),
            } => write!(f, "{what} is not supported (only {only})"),
            PatternError::ObjectPath(path) => write!(
                f,
                "object path {path} is not supported (only ipv4-addr:value, ipv6-addr:value, \
                 domain-name:value, url:value, email-addr:value, \
                 file:hashes.MD5/'SHA-1'/'SHA-256', file:name, windows-registry-key:key)"
            ),
            PatternError::Unexpected { found, place } => write!(f, "unexpected {found} {place}"),
            PatternError::Missing(what) => write!(f, "missing {what}"),
        }
    }
}

impl std::error::Error for PatternError {}

/// `object:path = 'literal'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
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

    pub(crate) fn value(&self) -> Result<IndicatorValue, ObjectError> {
        let kind = self
            .kind()
            .ok_or_else(|| PatternError::ObjectPath(self.path_text()))?;
        IndicatorValue::parse(kind, &self.literal).map_err(|error| ObjectError::Value {
            path: self.path_text(),
            error,
        })
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
pub(crate) fn parse_pattern(pattern: &str) -> Result<Vec<Comparison>, PatternError> {
    if pattern.len() > STIX_PATTERN_LEN_MAX {
        return Err(PatternError::TooLong);
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
        return Err(PatternError::NoComparison);
    }
    Ok(parser.comparisons)
}

fn lex(pattern: &str) -> Result<Vec<Token>, PatternError> {
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
            c => return Err(PatternError::Character(c)),
        }
    }
    Ok(tokens)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After a `/`: a `/* … */` or `// …` comment.
fn skip_comment(chars: &mut Chars<'_>) -> Result<(), PatternError> {
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
            Err(PatternError::Unterminated("comment"))
        }
        _ => Err(PatternError::Character('/')),
    }
}

/// After the opening `'`: the literal's text, with `\'` and `\\` unescaped.
fn string_literal(chars: &mut Chars<'_>) -> Result<String, PatternError> {
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return Err(PatternError::Unterminated("string literal")),
            Some('\'') => return Ok(text),
            Some('\\') => match chars.next() {
                Some(c @ ('\'' | '\\')) => text.push(c),
                Some(c) => return Err(PatternError::Escape(c)),
                None => return Err(PatternError::Unterminated("string literal")),
            },
            Some(c) => text.push(c),
        }
    }
}

fn operator(chars: &mut Chars<'_>) -> Result<&'static str, PatternError> {
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
        _ => return Err(PatternError::Character('!')),
    };
    if two {
        chars.next();
    }
    Ok(op)
}

/// A bare word, an object path (`type:prop.'quoted'.prop`) or a typed literal (`t'…'`).
fn word(chars: &mut Chars<'_>) -> Result<Token, PatternError> {
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
fn property_path(chars: &mut Chars<'_>) -> Result<Vec<String>, PatternError> {
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
            return Err(PatternError::EmptyProperty);
        }
        path.push(name);
        match chars.peek() {
            Some('.') => {
                chars.next();
            }
            Some('[') => {
                return Err(PatternError::unsupported(
                    "list indexes in object paths",
                    None,
                ));
            }
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
    fn observations(&mut self, depth: usize) -> Result<(), PatternError> {
        loop {
            self.observation(depth)?;
            self.qualifier_check()?;
            match self.peek() {
                Some(Token::Word(word)) if word == "OR" => {
                    self.pos += 1;
                }
                Some(Token::Word(word)) if word == "AND" => {
                    return Err(PatternError::unsupported(
                        "AND between observations",
                        ONLY_OR,
                    ));
                }
                Some(Token::Word(word)) if word == "FOLLOWEDBY" => {
                    return Err(PatternError::unsupported("FOLLOWEDBY", ONLY_OR));
                }
                _ => return Ok(()),
            }
        }
    }

    /// `[comparisons]` or `(observations)`.
    fn observation(&mut self, depth: usize) -> Result<(), PatternError> {
        match self.next().cloned() {
            Some(Token::Open) => {
                self.comparisons_or(depth)?;
                match self.next().cloned() {
                    Some(Token::Close) => Ok(()),
                    Some(token) => Err(self.unexpected(&token, "where ']' was expected")),
                    None => Err(PatternError::Missing("']'")),
                }
            }
            Some(Token::LParen) => {
                let depth = nest(depth)?;
                self.observations(depth)?;
                self.close_paren()
            }
            Some(token) => Err(self.unexpected(&token, "where '[' was expected")),
            None => Err(PatternError::Missing("observation")),
        }
    }

    /// Refuses `WITHIN`, `REPEATS`, `START`/`STOP` after an observation.
    fn qualifier_check(&self) -> Result<(), PatternError> {
        match self.peek() {
            Some(Token::Word(word)) if matches!(word.as_str(), "WITHIN" | "REPEATS" | "START") => {
                Err(PatternError::unsupported(format!("qualifier {word}"), None))
            }
            _ => Ok(()),
        }
    }

    /// `comparison (OR comparison)*` inside `[ ]`.
    fn comparisons_or(&mut self, depth: usize) -> Result<(), PatternError> {
        loop {
            self.comparison(depth)?;
            match self.peek() {
                Some(Token::Word(word)) if word == "OR" => {
                    self.pos += 1;
                }
                Some(Token::Word(word)) if word == "AND" => {
                    return Err(PatternError::unsupported(
                        "AND inside an observation",
                        ONLY_OR,
                    ));
                }
                _ => return Ok(()),
            }
        }
    }

    /// `path = 'string'` or `(comparisons)`.
    fn comparison(&mut self, depth: usize) -> Result<(), PatternError> {
        let (object, path) = match self.next().cloned() {
            Some(Token::LParen) => {
                let depth = nest(depth)?;
                self.comparisons_or(depth)?;
                return self.close_paren();
            }
            Some(Token::Path(object, path)) => (object, path),
            Some(token) => return Err(self.unexpected(&token, "where an object path was expected")),
            None => return Err(PatternError::Missing("comparison")),
        };
        match self.next().cloned() {
            Some(Token::Op("=")) => {}
            Some(Token::Op(op)) => {
                return Err(PatternError::unsupported(
                    format!("operator {op}"),
                    ONLY_EQUALS,
                ));
            }
            Some(Token::Word(word)) => {
                return Err(PatternError::unsupported(
                    format!("operator {word}"),
                    ONLY_EQUALS,
                ));
            }
            Some(token) => return Err(self.unexpected(&token, "where '=' was expected")),
            None => return Err(PatternError::Missing("operator")),
        }
        let literal = match self.next().cloned() {
            Some(Token::Str(literal)) => literal,
            Some(Token::OtherLiteral(what)) => {
                return Err(PatternError::unsupported(
                    what,
                    Some("single-quoted strings"),
                ));
            }
            Some(token) => return Err(self.unexpected(&token, "where a string was expected")),
            None => return Err(PatternError::Missing("value")),
        };
        if self.comparisons.len() >= STIX_COMPARISONS_MAX {
            return Err(PatternError::TooManyComparisons);
        }
        self.comparisons.push(Comparison {
            object,
            path,
            literal,
        });
        Ok(())
    }

    fn close_paren(&mut self) -> Result<(), PatternError> {
        match self.next().cloned() {
            Some(Token::RParen) => Ok(()),
            Some(token) => Err(self.unexpected(&token, "where ')' was expected")),
            None => Err(PatternError::Missing("')'")),
        }
    }

    fn unexpected(&self, token: &Token, place: &'static str) -> PatternError {
        let what = match token {
            Token::Open => "'['".to_owned(),
            Token::Close => "']'".to_owned(),
            Token::LParen => "'('".to_owned(),
            Token::RParen => "')'".to_owned(),
            Token::Comma => "','".to_owned(),
            Token::Path(object, path) => format!("object path {object}:{}", path.join(".")),
            Token::Word(word) if matches!(word.as_str(), "AND" | "FOLLOWEDBY" | "NOT") => {
                return PatternError::unsupported(word.clone(), ONLY_OR);
            }
            Token::Word(word) => format!("word {word:?}"),
            Token::Op(op) => format!("operator {op}"),
            Token::Str(_) => "a string".to_owned(),
            Token::OtherLiteral(what) => (*what).to_owned(),
        };
        PatternError::Unexpected { found: what, place }
    }
}

fn nest(depth: usize) -> Result<usize, PatternError> {
    if depth >= STIX_PATTERN_DEPTH_MAX {
        return Err(PatternError::TooDeep);
    }
    Ok(depth + 1)
}
