//! TAXII 2.1: one collection's objects into the IOC catalogue, configured as TAXII clients
//! are (OpenCTI's connector, `taxii2-client`): `url` is the discovery URL
//! (`https://host/taxii2/`), `api_root` an API root as discovery lists it (its URL) or its
//! title, on the same origin, and `collection` an id or a title. Each cycle resolves them,
//! then reads `GET {api_root}collections/{id}/objects/?limit=…&added_after=…`, all with
//! `Accept: application/taxii+json;version=2.1` and HTTP Basic auth. Facts:
//! `../shared/research/intel.md` §2.
//!
//! Paging follows `next` while the server gives one and `more` is true; without `next` it asks
//! again from the page's `X-TAXII-Date-Added-Last`. The checkpoint is that header minus one
//! microsecond (`added_after` is strict), saved only once the page is stored: the objects
//! added at that instant are read again and come back unchanged, so neither a crash nor a tie
//! across pages loses one. An empty result may be `{}`. An expired `next` (400) restarts the
//! pass from the checkpoint.
//!
//! | TAXII object | Vigil |
//! |---|---|
//! | `indicator` with `pattern_type` stix | catalogue entries (one per comparison), `source` = `taxii`, `source_ref` = the STIX id |
//! | `revoked`, `valid_from`, `valid_until`, `confidence` | inactive when revoked; the window; confidence |
//! | `object_marking_refs` with the STIX TLP marking ids | the strictest TLP, AMBER when unmarked |
//! | another `pattern_type`, another object type | skipped |
//! | a newer version (same id, later `modified`) | read again, the entry updated |
//!
//! TAXII has no deletions a client can see: feeds revoke, and revocation switches the entry off.

use serde_json::Value;
use vigil_domain::{Timestamp, Tlp};

use crate::CycleError;
use crate::apply::{Cursor, Mapped, apply_page, items};
use crate::error::MapError;
use crate::http::{Http, SourceError};
use crate::{Ctx, CycleReport};

const SOURCE_NAME: &str = "taxii";
/// Objects asked for per page; servers may answer fewer (medallion caps at its
/// `max_page_size`).
pub const TAXII_PAGE_SIZE: usize = 1_000;
/// The TAXII 2.1 media type, sent as `Accept` on every request.
const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// How often one pass restarts from its checkpoint after the server refused a `next` token
/// (they expire: medallion's last 30 s).
const NEXT_RESTARTS_MAX: u32 = 3;
/// The checkpoint's key in the stored cursor.
const CURSOR_KEY: &str = "added_after";

/// The STIX 2.1 TLP marking definitions (spec §7.2.1.4, and OpenCTI's AMBER+STRICT).
const TLP_MARKINGS: [(&str, Tlp); 5] = [
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::Amber,
    ),
    (
        "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37",
        Tlp::AmberStrict,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        Tlp::Red,
    ),
];

/// API roots asked for their title at most, when `api_root` names one by title.
const API_ROOTS_PROBED_MAX: usize = 16;

/// Why the options do not name what the server offers: the option, and what it offers.
#[derive(Debug)]
pub(crate) enum Unresolved {
    Option {
        option: &'static str,
        reason: String,
    },
    Source(SourceError),
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolved::Option { option, reason } => write!(f, "taxii `{option}`: {reason}"),
            Unresolved::Source(err) => err.fmt(f),
        }
    }
}

impl From<SourceError> for Unresolved {
    fn from(err: SourceError) -> Self {
        Unresolved::Source(err)
    }
}

impl From<Unresolved> for CycleError {
    fn from(err: Unresolved) -> Self {
        match err {
            Unresolved::Source(err) => CycleError::Source(err),
            option => CycleError::Config(option.to_string()),
        }
    }
}

/// `url` with exactly one trailing slash, as TAXII lists its URLs.
fn slashed(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// Scheme, host and port of an absolute URL, lowercase (the credentials' binding).
fn origin(url: &str) -> Option<String> {
    vigil_domain::SourceUrl::parse(url)
        .ok()
        .map(|url| url.origin())
}

impl Taxii<'_> {
    /// GETs a TAXII document (discovery, an API root, the collections) as JSON.
    async fn document(&self, url: &str) -> Result<Value, SourceError> {
        let credentials = &self.ctx.credentials;
        let build = || {
            self.http
                .get(url)
                .basic_auth(
                    credentials.get("username").unwrap_or_default(),
                    credentials.get("password"),
                )
                .header(vigil_outbound::header::ACCEPT, MEDIA_TYPE)
        };
        Ok(self.http.fetch(SOURCE_NAME, build).await?.1)
    }

    /// The collection's objects URL: the connector's URL is the discovery URL, `api_root`
    /// one of the API roots it lists (its URL, or its title) on the same origin, and
    /// `collection` a collection of that root (its id, or its title).
    pub(crate) async fn resolve(&self) -> Result<String, Unresolved> {
        let connector = self.ctx.connector;
        let wanted_root = connector.options.get("api_root").unwrap_or_default();
        let wanted_collection = connector.options.get("collection").unwrap_or_default();
        let discovery = self.document(&slashed(connector.url.as_str())).await?;
        let roots: Vec<String> = discovery
            .get("api_roots")
            .and_then(Value::as_array)
            .map(|roots| {
                roots
                    .iter()
                    .filter_map(Value::as_str)
                    .map(slashed)
                    .collect()
            })
            .unwrap_or_default();
        let root = self.api_root(&roots, wanted_root).await?;
        if origin(&root) != Some(connector.url.origin()) {
            return Err(Unresolved::Option {
                option: "api_root",
                reason: format!(
                    "{root} is on another origin than the discovery URL; the credentials are only sent to {}",
                    connector.url.origin()
                ),
            });
        }
        let listed = self.document(&format!("{root}collections/")).await?;
        let collections: Vec<(String, String)> = listed
            .get("collections")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|c| {
                        let id = c.get("id")?.as_str()?.to_owned();
                        let title = c.get("title").and_then(Value::as_str).unwrap_or("");
                        Some((id, title.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let Some((id, _)) = collections
            .iter()
            .find(|(id, title)| id == wanted_collection || title == wanted_collection)
        else {
            let offered: Vec<String> = collections
                .iter()
                .map(|(id, title)| format!("{id} ({title})"))
                .collect();
            return Err(Unresolved::Option {
                option: "collection",
                reason: format!("not offered by {root}; it offers: {}", offered.join(", ")),
            });
        };
        if id.contains(['/', '?', '#']) {
            return Err(Unresolved::Option {
                option: "collection",
                reason: "the server lists an id that is not a path segment".to_owned(),
            });
        }
        Ok(format!("{root}collections/{id}/objects/"))
    }

    /// The API root `wanted` names among those discovery lists: by URL, else by title.
    async fn api_root(&self, roots: &[String], wanted: &str) -> Result<String, Unresolved> {
        if wanted.contains("://") {
            let wanted = slashed(wanted);
            if roots.contains(&wanted) {
                return Ok(wanted);
            }
        } else {
            for root in roots.iter().take(API_ROOTS_PROBED_MAX) {
                let information = self.document(root).await?;
                if information.get("title").and_then(Value::as_str) == Some(wanted) {
                    return Ok(root.clone());
                }
            }
        }
        Err(Unresolved::Option {
            option: "api_root",
            reason: format!(
                "not listed by the discovery document, which lists: {}",
                if roots.is_empty() {
                    "none".to_owned()
                } else {
                    roots.join(", ")
                }
            ),
        })
    }
}

/// One page as the server answered it.
struct Envelope {
    objects: Vec<Value>,
    more: bool,
    next: Option<String>,
    /// `X-TAXII-Date-Added-Last`.
    last_added: Option<Timestamp>,
}

fn envelope(
    headers: &vigil_outbound::header::HeaderMap,
    body: Value,
) -> Result<Envelope, SourceError> {
    let malformed = |what: &str| SourceError::Malformed(what.to_owned(), SOURCE_NAME);
    let Value::Object(mut body) = body else {
        return Err(malformed("an envelope that is not a JSON object"));
    };
    let objects = match body.remove("objects") {
        None => Vec::new(),
        Some(Value::Array(objects)) => objects,
        Some(_) => return Err(malformed("\"objects\" is not an array")),
    };
    let last_added = match headers.get("x-taxii-date-added-last") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|at| Timestamp::parse(at.trim()).ok())
                .ok_or_else(|| malformed("X-TAXII-Date-Added-Last is not a timestamp"))?,
        ),
    };
    Ok(Envelope {
        objects,
        more: body.get("more").and_then(Value::as_bool).unwrap_or(false),
        next: body.get("next").and_then(Value::as_str).map(str::to_owned),
        last_added,
    })
}

/// Where the next request starts: an `added_after` and, while paging by token, `next`.
#[derive(Debug, Clone, Default)]
struct Position {
    added_after: Option<String>,
    next: Option<String>,
}

pub(crate) struct Taxii<'a> {
    ctx: &'a Ctx<'a>,
    http: Http,
    /// The collection's objects URL, once resolved.
    url: String,
}

impl Taxii<'_> {
    async fn get(&self, at: &Position) -> Result<Envelope, SourceError> {
        let credentials = &self.ctx.credentials;
        let limit = TAXII_PAGE_SIZE.to_string();
        let mut query: Vec<(&str, &str)> = vec![("limit", &limit)];
        query.extend(
            at.added_after
                .as_deref()
                .map(|after| ("added_after", after)),
        );
        query.extend(at.next.as_deref().map(|next| ("next", next)));
        let build = || {
            self.http
                .get(&self.url)
                .basic_auth(
                    credentials.get("username").unwrap_or_default(),
                    credentials.get("password"),
                )
                .header(vigil_outbound::header::ACCEPT, MEDIA_TYPE)
                .query(&query)
        };
        let (headers, body) = self.http.fetch(SOURCE_NAME, build).await?;
        envelope(&headers, body)
    }
}

/// The PUT-time check: the discovery URL, API root and collection against the server, when
/// it answers. A server that cannot be reached leaves the configuration as given.
pub(crate) async fn check(ctx: &Ctx<'_>) -> vigil_service::ServiceResult<()> {
    use vigil_service::ServiceError;
    let taxii = Taxii {
        ctx,
        http: ctx.http.clone(),
        url: String::new(),
    };
    match taxii.resolve().await {
        Ok(_) => Ok(()),
        Err(Unresolved::Option { option, reason }) => Err(ServiceError::invalid(
            "options",
            format!("`{option}` {reason}"),
        )),
        Err(Unresolved::Source(SourceError::Refused {
            status: 401 | 403, ..
        })) => Err(ServiceError::invalid(
            "credentials",
            "the TAXII server refused them",
        )),
        Err(Unresolved::Source(
            err @ (SourceError::Refused { .. } | SourceError::Malformed(..)),
        )) => Err(ServiceError::invalid(
            "url",
            format!("not a TAXII 2.1 discovery URL: {err}"),
        )),
        Err(Unresolved::Source(SourceError::Outbound { error, .. })) if !error.is_transient() => {
            Err(ServiceError::invalid("url", error.to_string()))
        }
        Err(Unresolved::Source(err)) => {
            tracing::warn!(component = "sync", connector = %ctx.connector.name, error = %err, "could not check the TAXII configuration; kept as given");
            Ok(())
        }
    }
}

/// One cycle: every object added since the checkpoint, page by page.
pub(crate) async fn cycle(ctx: &Ctx<'_>, report: &mut CycleReport) -> Result<(), CycleError> {
    let connector = ctx.connector;
    let mut taxii = Taxii {
        ctx,
        http: ctx.http.clone(),
        url: String::new(),
    };
    taxii.url = taxii.resolve().await?;
    let mut cursor = Cursor::load(ctx.services, connector).await?;
    let mut checkpoint = cursor.get(CURSOR_KEY).map(str::to_owned);
    let mut at = Position {
        added_after: checkpoint.clone(),
        next: None,
    };
    let mut restarts = 0;
    loop {
        let page = match taxii.get(&at).await {
            Err(SourceError::Refused { status: 400, .. })
                if at.next.is_some() && restarts < NEXT_RESTARTS_MAX =>
            {
                restarts += 1;
                tracing::warn!(component = "sync", connector = %connector.name, "the server refused its `next` token; restarting from the checkpoint");
                at = Position {
                    added_after: checkpoint.clone(),
                    next: None,
                };
                continue;
            }
            other => other?,
        };
        let read = page.objects.len();
        let items = items(page.objects, "id", map);
        apply_page(ctx.services, connector, items, report).await?;
        // Inclusive: the objects added at `last_added` itself are read again.
        let resume = page
            .last_added
            .map(|last| Timestamp::from_unix_micros(last.unix_micros() - 1).to_string());
        if let Some(resume) = resume.as_ref().filter(|r| Some(*r) != checkpoint.as_ref()) {
            cursor.save(CURSOR_KEY, resume).await?;
            checkpoint = Some(resume.clone());
        }
        if !page.more || read == 0 {
            return Ok(());
        }
        at = following(&connector.name, at, page.next, resume, page.last_added)?;
    }
}

/// Where the page after one with `more` starts.
fn following(
    connector: &vigil_domain::ConnectorName,
    at: Position,
    next: Option<String>,
    resume: Option<String>,
    last_added: Option<Timestamp>,
) -> Result<Position, CycleError> {
    Ok(match (next, resume, last_added) {
        // The token pages within the same query: the other parameters stay.
        (Some(next), _, _) => Position {
            next: Some(next),
            ..at
        },
        (None, Some(resume), _) if at.added_after.as_ref() != Some(&resume) => Position {
            added_after: Some(resume),
            next: None,
        },
        // A whole page added at one instant and no token: only a strict `added_after`
        // moves on.
        (None, _, Some(last)) => {
            tracing::warn!(component = "sync", %connector, at = %last, "a full page shares one date_added and the server gave no `next`");
            Position {
                added_after: Some(last.to_string()),
                next: None,
            }
        }
        (None, _, None) => {
            return Err(SourceError::Malformed(
                "`more` with neither `next` nor X-TAXII-Date-Added-Last".into(),
                SOURCE_NAME,
            )
            .into());
        }
    })
}

/// What one object of the collection maps to.
pub(crate) fn map(object: &Value) -> Result<Mapped, MapError> {
    if object.get("type").and_then(Value::as_str) != Some("indicator") {
        return Ok(Mapped::Skipped);
    }
    let pattern_type = object
        .get("pattern_type")
        .and_then(Value::as_str)
        .unwrap_or("stix");
    if !pattern_type.eq_ignore_ascii_case("stix") {
        return Ok(Mapped::Skipped);
    }
    let tlp = object
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|id| TLP_MARKINGS.iter().find(|(known, _)| *known == id))
        .map(|(_, tlp)| *tlp)
        .max()
        .unwrap_or(Tlp::Amber);
    let mut found = vigil_service::indicators_from_stix(object, SOURCE_NAME)?;
    for indicator in &mut found {
        indicator.tlp = tlp;
    }
    Ok(Mapped::Indicators(found))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_map_by_type_pattern_and_marking() {
        let indicator = json!({
            "type": "indicator", "spec_version": "2.1", "id": "indicator--1",
            "pattern": "[domain-name:value = 'Evil.Example']", "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z",
            "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]
        });
        let Ok(Mapped::Indicators(found)) = map(&indicator) else {
            panic!("an indicator")
        };
        assert_eq!(found[0].value.as_str(), "evil.example");
        assert_eq!(found[0].tlp, Tlp::Green);
        assert_eq!(found[0].source.as_ref().unwrap().as_str(), "taxii");
        assert!(matches!(
            map(&json!({"type": "identity", "id": "identity--1"})),
            Ok(Mapped::Skipped)
        ));
        let yara = json!({"type": "indicator", "id": "indicator--2", "pattern": "rule x {}", "pattern_type": "yara"});
        assert!(matches!(map(&yara), Ok(Mapped::Skipped)));
        let and = json!({"type": "indicator", "id": "indicator--3", "pattern_type": "stix",
            "pattern": "[file:name = 'a' AND file:size = 3]"});
        assert!(
            map(&and).is_err(),
            "a pattern Vigil cannot match is a dead letter"
        );
    }
}
