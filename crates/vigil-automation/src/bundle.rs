//! Portable app bundles (`vigil.apps/v1`): apps with their tasks and logos, every reference by
//! name, no internal id, no instance and no secret (secret fields only as declared names). The
//! bytes are canonical — keys sorted, no insignificant whitespace, apps and tasks by name — so
//! the same apps always export to the same text apart from `exported_at`, and the digest
//! (SHA-256 of the canonical `apps`) says whether a bundle was changed on the way.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::{AppDefinition, AppLogo, DefinitionError, TaskDefinition};

/// The format this Vigil writes.
pub const BUNDLE_FORMAT: &str = "vigil.apps/v1";
/// The only major version this Vigil reads (`vigil.apps/v1`, `vigil.apps/v1.2`).
pub const BUNDLE_FORMAT_MAJOR: u32 = 1;
/// Most apps one bundle carries.
pub const BUNDLE_APPS_MAX: usize = 100;
/// Largest bundle read, in bytes (logos travel as base64 inside it).
pub const BUNDLE_BYTES_MAX: usize = 32 * 1024 * 1024;

/// A bundle as written and read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub exported_at: String,
    pub apps: Vec<BundleApp>,
    /// `sha256:<hex>` of the canonical JSON of `apps`.
    pub digest: String,
}

/// One app of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleApp {
    pub name: String,
    pub definition: AppDefinition,
    /// The secrets an instance of it needs, by name (never a value): what an importer must
    /// provide.
    #[serde(default)]
    pub secret_fields: Vec<String>,
    #[serde(default)]
    pub logo: Option<BundleLogo>,
    #[serde(default)]
    pub tasks: Vec<BundleTask>,
}

/// A logo: its media type and its bytes in standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleLogo {
    pub media_type: String,
    pub data: String,
}

/// One task of a bundled app; its `depends_on` always reads `app/task`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleTask {
    pub name: String,
    pub definition: TaskDefinition,
}

impl BundleLogo {
    pub fn from_logo(logo: &AppLogo) -> Self {
        Self {
            media_type: logo.media_type.to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(&logo.bytes),
        }
    }

    /// The logo's bytes, checked as an uploaded logo is (type sniffed, size capped); the
    /// declared type must agree with the bytes.
    pub fn to_logo(&self) -> Result<AppLogo, DefinitionError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.data.as_bytes())
            .map_err(|_| DefinitionError::new("logo.data", "is not standard base64"))?;
        let logo = AppLogo::sniff(bytes)?;
        if logo.media_type != self.media_type {
            return Err(DefinitionError::new(
                "logo.media_type",
                format!(
                    "says {} but the bytes are {}",
                    self.media_type, logo.media_type
                ),
            ));
        }
        Ok(logo)
    }
}

/// `value` as canonical JSON: object keys sorted, no whitespace. Numbers and strings as
/// serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `sha256:<hex>` of the canonical JSON of `apps`.
pub fn digest(apps: &[BundleApp]) -> String {
    let value = serde_json::to_value(apps).unwrap_or(Value::Null);
    let hash = Sha256::digest(canonical_json(&value).as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Bundle {
    /// A bundle of `apps` (sorted by name, their tasks by name), digest computed.
    pub fn new(exported_at: String, mut apps: Vec<BundleApp>) -> Self {
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        for app in &mut apps {
            app.tasks.sort_by(|a, b| a.name.cmp(&b.name));
            app.secret_fields.sort();
        }
        let digest = digest(&apps);
        Self {
            format: BUNDLE_FORMAT.to_owned(),
            exported_at,
            apps,
            digest,
        }
    }

    /// The bundle as its canonical text.
    pub fn to_canonical(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The major version `format` names, when it is a `vigil.apps` format at all.
    pub fn format_major(&self) -> Option<u32> {
        let version = self.format.strip_prefix("vigil.apps/v")?;
        let major = version.split('.').next()?;
        if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        major.parse().ok()
    }

    /// Whether the digest matches the apps.
    pub fn digest_matches(&self) -> bool {
        digest(&self.apps) == self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(name: &str, tasks: &[&str]) -> BundleApp {
        BundleApp {
            name: name.into(),
            definition: serde_json::from_value(json!({"version": "1.0.0", "description": null,
                "category": null, "config_schema": {"type": "object", "properties": {"b": {}, "a": {}}},
                "base_url_required": true}))
            .unwrap(),
            secret_fields: vec!["z".into(), "k".into()],
            logo: None,
            tasks: tasks
                .iter()
                .map(|t| BundleTask {
                    name: (*t).into(),
                    definition: serde_json::from_value(json!({"description": null,
                        "input_schema": {"type": "object"},
                        "request": {"method": "GET", "path": "/x"}, "timeout_ms": 1000}))
                    .unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_same_apps_give_the_same_bytes_whatever_their_order() {
        let one = Bundle::new("t".into(), vec![app("b", &["y", "x"]), app("a", &[])]);
        let two = Bundle::new("t".into(), vec![app("a", &[]), app("b", &["x", "y"])]);
        assert_eq!(one.to_canonical(), two.to_canonical());
        assert_eq!(one.apps[0].name, "a");
        assert_eq!(one.apps[1].tasks[0].name, "x");
        assert_eq!(one.apps[1].secret_fields, ["k", "z"]);
        assert!(one.digest.starts_with("sha256:") && one.digest.len() == 7 + 64);
        assert!(one.digest_matches());
        let text = one.to_canonical();
        assert!(
            text.starts_with(r#"{"apps":[{"definition":{"base_url_required":true"#),
            "{text}"
        );
        let mut changed = one.clone();
        changed.apps[0].definition.version = "1.0.1".into();
        assert!(
            !changed.digest_matches(),
            "a changed app no longer matches the digest"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = json!({"b": [{"d": 1, "c": "é\n"}], "a": null});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":null,"b":[{"c":"é\n","d":1}]}"#
        );
    }

    #[test]
    fn only_major_version_one_is_read() {
        let mut bundle = Bundle::new("t".into(), vec![]);
        for (format, major) in [
            ("vigil.apps/v1", Some(1)),
            ("vigil.apps/v1.3", Some(1)),
            ("vigil.apps/v2", Some(2)),
            ("vigil.apps/v", None),
            ("vigil.app/v1", None),
            ("other", None),
        ] {
            bundle.format = format.into();
            assert_eq!(bundle.format_major(), major, "{format}");
        }
    }

    #[test]
    fn a_logo_travels_as_base64_and_is_checked_again() {
        let png = AppLogo::sniff(b"\x89PNG\r\n\x1a\n rest".to_vec()).unwrap();
        let carried = BundleLogo::from_logo(&png);
        assert_eq!(carried.to_logo().unwrap(), png);
        let lying = BundleLogo {
            media_type: "image/svg+xml".into(),
            ..carried.clone()
        };
        assert_eq!(lying.to_logo().unwrap_err().field, "logo.media_type");
        let broken = BundleLogo {
            data: "***".into(),
            ..carried
        };
        assert_eq!(broken.to_logo().unwrap_err().field, "logo.data");
    }
}
