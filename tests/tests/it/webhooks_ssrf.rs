//! Webhooks and server-side request forgery: without the operator's setting, URLs
//! on non-public addresses (in any notation, or by a name resolving to one) and
//! URLs that are not plain http(s) are refused at registration; an allow-list admits
//! its ranges only; a target that became non-public after registration is refused
//! at delivery, the receiver never reached; and https receivers are verified (an
//! untrusted certificate fails the attempt).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{CreateWebhookRequest, Webhook, webhook_service_client::WebhookServiceClient};
use nova_tests::{
    clients::{self, Credentials},
    wait,
    webhook_receiver::Receiver,
    webhooks::{WAIT, World},
};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test(flavor = "multi_thread")]
async fn registration_refuses_non_public_and_odd_targets_without_the_operator_setting() {
    let w = World::start(|config| config.webhooks.allow_private = false).await;
    for url in [
        "http://127.0.0.1:9/hook?token=hunter2",
        "http://localhost:9/hook?token=hunter2",
        "http://[::1]/hook?token=hunter2",
        "http://[::ffff:127.0.0.1]/hook?token=hunter2",
        "http://2130706433/hook?token=hunter2",
        "http://0x7f.1/hook?token=hunter2",
        "http://10.0.0.5/hook?token=hunter2",
        "http://192.168.1.1/hook?token=hunter2",
        "http://169.254.169.254/latest/meta-data?token=hunter2",
        "http://100.64.0.1/hook?token=hunter2",
        "http://0.0.0.0/hook?token=hunter2",
        "http://[fd00::1]/hook?token=hunter2",
        "http://[fe80::1]/hook?token=hunter2",
        "http://224.0.0.1/hook?token=hunter2",
        "ftp://93.184.215.14/hook?token=hunter2",
        "file:///etc/passwd",
        "https://user:hunter2@93.184.215.14/hook",
        "https://93.184.215.14/hook#hunter2",
        "not a url",
        "https://does-not-resolve.invalid/hook?token=hunter2",
    ] {
        let refused = w
            .rest("alice", "POST", "/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(refused.status, 400, "{url}: {:?}", refused.json);
        assert_eq!(refused.json["error"]["code"], "INVALID_ARGUMENT", "{url}");
        let message = refused.json["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("webhook.url: "), "{url}: {message}");
        assert!(
            !message.contains("hunter2"),
            "{url}: the message echoes a secret: {message}"
        );
    }
    let loopback = w
        .rest(
            "alice",
            "POST",
            "/webhooks",
            Some(json!({ "url": "http://127.0.0.1:9/" })),
        )
        .await;
    assert_eq!(
        loopback.json["error"]["message"],
        "webhook.url: not allowed: 127.0.0.1 is a loopback address"
    );

    // A public address is fine (no delivery is made: nothing happens to alice).
    let (public, _) = w.register("alice", "http://93.184.215.14/hook", None).await;
    // Changing it to a private one is refused the same way.
    let patched = w
        .rest(
            "alice",
            "PATCH",
            &format!("/webhooks/{public}"),
            Some(json!({ "url": "http://10.1.2.3/" })),
        )
        .await;
    assert_eq!(patched.status, 400, "{:?}", patched.json);

    // gRPC says which field is wrong in the error details too.
    let mut grpc = WebhookServiceClient::with_interceptor(
        clients::channel(&w.ctx.url()).await,
        Credentials::new(Some(&w.ctx.token), Some("alice")),
    );
    let status = grpc
        .create_webhook(CreateWebhookRequest {
            webhook: Some(Webhook {
                url: "http://[::1]:8080/".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let violation = &details.bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "webhook.url");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_list_admits_its_ranges_only() {
    let w = World::start(|config| {
        config.webhooks.allow_private = false;
        config.webhooks.allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    w.register("alice", &receiver.url("/"), None).await;
    for url in [
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
    ] {
        let refused = w
            .rest("alice", "POST", "/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(refused.status, 400, "{url}: {:?}", refused.json);
    }
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_is_not_allowed_any_more_is_refused_at_delivery() {
    // Registered while the operator allowed loopback ...
    let mut w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let port = receiver.addr.port();
    let (by_name, _) = w
        .register("alice", &format!("http://localhost:{port}/by-name"), None)
        .await;
    let (by_address, _) = w
        .register(
            "alice",
            &format!("http://127.0.0.1:{port}/by-address"),
            None,
        )
        .await;
    // ... then the setting is withdrawn and the control plane restarted.
    w.ctx.config.webhooks.allow_private = false;
    w.ctx.restart_while(async {}).await;
    w.create_stream("nobody may hear this").await;

    for (hook, error) in [
        (&by_name, "localhost resolves to "),
        (&by_address, "127.0.0.1 is a loopback address"),
    ] {
        let attempts = w.wait_attempts("alice", hook, 1).await;
        let first = &attempts[0];
        assert_eq!(first["outcome"], "refused", "{first}");
        assert_eq!(first["status_code"], Value::Null);
        let text = first["error"].as_str().unwrap();
        assert!(text.starts_with(error), "{text}");
        assert!(!text.contains("/by-"), "no path in the error: {text}");
    }
    assert!(
        receiver.deliveries().is_empty(),
        "the receiver was never reached"
    );
    let metrics = wait::until("refusals counted", WAIT, || async {
        let text = nova_tests::http::get(&w.ctx.metrics_url())
            .await
            .unwrap()
            .text();
        let refused = text.lines().any(|l| {
            l.starts_with("nova_streaming_webhook_deliveries_total{")
                && l.contains(r#"outcome="refused""#)
                && !l.ends_with(" 0")
        });
        if refused { Ok(text) } else { Err(()) }
    })
    .await;
    assert!(metrics.contains("nova_streaming_webhook_delivery_duration_seconds_bucket"));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_receiver_is_verified_and_an_untrusted_certificate_refused() {
    let mut w = World::start(|_| {}).await;
    // A TLS server whose certificate (for 127.0.0.1) a private CA signed: not in the
    // system's trust store.
    let dir = tempfile::tempdir().unwrap();
    let certs = nova_tests::tls::make(dir.path(), "Nova untrusted test CA");
    let port = nova_stack::wait::free_port().unwrap();
    let _server = tokio::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&certs.cert)
        .arg("-key")
        .arg(&certs.key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run openssl s_server");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    nova_stack::wait::until(
        "openssl s_server listening",
        std::time::Duration::from_secs(10),
        || nova_stack::wait::accepts(addr),
    )
    .unwrap();
    let (hook, _) = w
        .register("alice", &format!("https://127.0.0.1:{port}/hook"), None)
        .await;
    w.create_stream("over TLS").await;
    let attempts = w.wait_attempts("alice", &hook, 1).await;
    let first = &attempts[0];
    assert_eq!(first["outcome"], "network_error", "{first}");
    let error = first["error"].as_str().unwrap();
    assert!(error.contains("certificate"), "{error}");
    w.shutdown().await;
}
