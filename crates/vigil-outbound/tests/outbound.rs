//! The policy against real sockets: a local server that must not be reached unless allowed,
//! by address or by a name that resolves to it, directly or through a redirect.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use axum::routing::get;
use vigil_outbound::{
    Outbound, OutboundError, OutboundLimits, OutboundPolicy, Refusal, StatusCode,
};

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/to-metadata",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(LOCATION, "http://169.254.169.254/latest/meta-data/")],
                )
            }),
        )
        .route(
            "/to-hello",
            get(|| async { (StatusCode::FOUND, [(LOCATION, "/hello")]) }),
        )
        .route("/big", get(|| async { "x".repeat(4096) }))
        .route(
            "/big-stream",
            get(|| async {
                let chunks = (0..8).map(|_| Ok::<_, std::io::Error>("y".repeat(512)));
                Body::from_stream(futures_stream(chunks)).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A stream of chunks without a Content-Length, so the cap must stop the reading itself.
fn futures_stream(
    chunks: impl Iterator<Item = Result<String, std::io::Error>> + Send + Unpin + 'static,
) -> impl futures_core::Stream<Item = Result<String, std::io::Error>> + Send {
    struct Chunks<I>(I);
    impl<I: Iterator + Unpin> futures_core::Stream for Chunks<I> {
        type Item = I::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<I::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Chunks(chunks)
}

fn outbound(allow: &str) -> Outbound {
    Outbound::new(
        OutboundPolicy::new(allow).unwrap(),
        OutboundLimits::default(),
    )
}

async fn get_text(outbound: &Outbound, url: &str) -> Result<String, OutboundError> {
    let answer = outbound.send(outbound.get(url)).await?;
    Ok(String::from_utf8(answer.body).unwrap())
}

#[tokio::test]
async fn loopback_is_refused_by_address_and_by_name() {
    let addr = serve().await;
    let closed = outbound("");
    for url in [
        format!("http://{addr}/hello"),
        format!("http://localhost:{}/hello", addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/hello", addr.port()),
        format!("http://0x7f.1:{}/hello", addr.port()),
    ] {
        assert_eq!(
            get_text(&closed, &url).await,
            Err(OutboundError::Refused(Refusal::Loopback)),
            "{url}"
        );
    }
    let open = outbound("127.0.0.0/8");
    assert_eq!(
        get_text(&open, &format!("http://{addr}/hello"))
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(
        get_text(&open, &format!("http://localhost:{}/hello", addr.port()))
            .await
            .unwrap(),
        "hello",
        "a name resolving to an allowed address"
    );
}

#[tokio::test]
async fn metadata_and_bad_urls_are_refused_before_any_connection() {
    let outbound = outbound("");
    assert_eq!(
        get_text(&outbound, "http://169.254.169.254/latest/meta-data/").await,
        Err(OutboundError::Refused(Refusal::Metadata))
    );
    assert!(matches!(
        get_text(&outbound, "ftp://example.invalid/").await,
        Err(OutboundError::BadUrl(_))
    ));
}

#[tokio::test]
async fn redirects_stay_on_their_host() {
    let addr = serve().await;
    let outbound = outbound("127.0.0.0/8");
    assert_eq!(
        get_text(&outbound, &format!("http://{addr}/to-hello"))
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(
        get_text(&outbound, &format!("http://{addr}/to-metadata")).await,
        Err(OutboundError::Redirect("it leads to another host"))
    );
}

#[tokio::test]
async fn answers_past_the_cap_are_refused() {
    let addr = serve().await;
    let limits = OutboundLimits {
        response_bytes_max: 1024,
        ..OutboundLimits::default()
    };
    let outbound = Outbound::new(OutboundPolicy::new("127.0.0.0/8").unwrap(), limits);
    for path in ["big", "big-stream"] {
        assert_eq!(
            get_text(&outbound, &format!("http://{addr}/{path}")).await,
            Err(OutboundError::TooLarge { limit: 1024 }),
            "{path}"
        );
    }
    assert_eq!(
        get_text(&outbound, &format!("http://{addr}/hello"))
            .await
            .unwrap(),
        "hello"
    );
}
