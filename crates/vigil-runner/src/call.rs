//! One attempt of one step: the rendered request turned into an HTTP call on the instance's
//! base URL (which it may not leave), sent through the outbound policy with the task's
//! timeout, and what came back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_automation::{AttemptOutcome, HttpMethod, RenderedRequest};
use vigil_outbound::{Method, OutboundError, Url, header};

use crate::Inner;

/// What one attempt found.
pub(crate) struct Sent {
    pub(crate) outcome: AttemptOutcome,
    pub(crate) status: Option<u16>,
    pub(crate) headers: header::HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) error: Option<String>,
    pub(crate) elapsed: Duration,
}

/// The URL of `request` on `base`: the rendered path must start with `/` and the result must
/// stay on the base URL's origin (a path cannot name another host).
pub(crate) fn url(base: &str, request: &RenderedRequest) -> Result<Url, String> {
    if !request.path.starts_with('/') {
        return Err("request.path: the rendered path must start with /".into());
    }
    let base_url = Url::parse(base).map_err(|_| "the instance's base URL does not parse")?;
    let joined = format!("{}{}", base.trim_end_matches('/'), request.path);
    let mut url = Url::parse(&joined).map_err(|_| "request.path: not a valid URL path")?;
    // After normalization (`..` resolved), the path must still be under the base URL's.
    let base_path = base_url.path().trim_end_matches('/');
    let under = url.path() == base_path || url.path().starts_with(&format!("{base_path}/"));
    if url.origin() != base_url.origin() || !under {
        return Err("request.path: the rendered path leaves the instance's base URL".into());
    }
    if !request.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&request.query);
    }
    Ok(url)
}

fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

/// The request as the history shows it: `shown` is the request rendered with secrets masked.
pub(crate) fn recorded(url: Option<&Url>, shown: &RenderedRequest) -> Value {
    json!({
        "method": shown.method.as_str(),
        "url": url.map(Url::as_str),
        "path": shown.path,
        "query": shown.query,
        "headers": shown.headers,
        "body": shown.body,
    })
}

fn outcome_of(error: &OutboundError) -> AttemptOutcome {
    match error {
        OutboundError::Connect => AttemptOutcome::ConnectFailed,
        OutboundError::Timeout | OutboundError::Failed => AttemptOutcome::TimedOut,
        OutboundError::BadUrl(_)
        | OutboundError::Refused(_)
        | OutboundError::Redirect(_)
        | OutboundError::TooLarge { .. } => AttemptOutcome::Refused,
    }
}

impl Inner {
    /// Sends `request` to `url` once, within `timeout`.
    pub(crate) async fn send(
        &self,
        url: Url,
        request: &RenderedRequest,
        timeout: Duration,
    ) -> Result<Sent, String> {
        let mut builder = self
            .outbound
            .request(method(request.method), url.as_str())
            .timeout(timeout);
        for (name, value) in &request.headers {
            let name = header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("request.headers.{name}: not a valid header name"))?;
            let value = header::HeaderValue::from_str(value)
                .map_err(|_| format!("request.headers.{name}: not a valid header value"))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let started = Instant::now();
        let sent = match self.outbound.send(builder).await {
            Ok(answer) => Sent {
                outcome: AttemptOutcome::Status(answer.status.as_u16()),
                status: Some(answer.status.as_u16()),
                headers: answer.headers,
                body: answer.body,
                error: None,
                elapsed: started.elapsed(),
            },
            Err(error) => Sent {
                outcome: outcome_of(&error),
                status: None,
                headers: header::HeaderMap::new(),
                body: Vec::new(),
                error: Some(error.to_string()),
                elapsed: started.elapsed(),
            },
        };
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn request(path: &str) -> RenderedRequest {
        RenderedRequest {
            method: HttpMethod::Get,
            path: path.into(),
            query: BTreeMap::from([("ip".into(), "192.0.2.1 &x=1".into())]),
            headers: BTreeMap::new(),
            body: None,
        }
    }

    #[test]
    fn a_path_stays_on_the_base_url() {
        let base = "https://api.example.com/v2/";
        let ok = url(base, &request("/check")).unwrap();
        assert_eq!(
            ok.as_str(),
            "https://api.example.com/v2/check?ip=192.0.2.1+%26x%3D1"
        );
        for escape in [
            "@evil.example/x",
            "x",
            ".evil.example/x",
            "/../admin",
            "/%2e%2e/admin",
        ] {
            assert!(url(base, &request(escape)).is_err(), "{escape}");
        }
        let other = url("https://api.example.com", &request("//evil.example/x")).unwrap();
        assert_eq!(other.host_str(), Some("api.example.com"));
        let port = url("https://api.example.com", &request("/:8443/x")).unwrap();
        assert_eq!(port.host_str(), Some("api.example.com"));
        assert_eq!(port.port(), None);
    }
}
