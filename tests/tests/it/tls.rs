//! TLS to PostgreSQL and Redis: the real control-plane binary against engines that
//! speak TLS, with libpq's `sslmode` semantics and `rediss://`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use diesel::sql_types::{BigInt, Bool};
use diesel_async::RunQueryDsl;
use nova_proto::v1::{CreateStreamRequest, JoinSessionRequest, Stream, ViewerKind};
use nova_stack::{postgres::Postgres, redis::Redis, wait};
use nova_tests::{clients, context::random_token, tls};

/// Both engines with TLS, stopped on drop.
struct Engines {
    postgres: Postgres,
    redis: Redis,
}

impl Drop for Engines {
    fn drop(&mut self) {
        let _ = self.redis.stop();
        let _ = self.postgres.stop();
    }
}

fn control_plane(database_url: &str, redis_url: &str, ca: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(
        nova_stack::stack::sibling_binary("nova-control-plane").expect("binary built"),
    );
    command
        .env("NOVA_DATABASE_URL", database_url)
        .env("NOVA_REDIS_URL", redis_url)
        .env("NOVA_SERVICE_TOKEN", random_token())
        .env("NOVA_METRICS_ADDR", "127.0.0.1:0")
        .env("SSL_CERT_FILE", ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `--migrate-only` against `database_url`; returns success and the output.
async fn migrate_only(database_url: &str, redis_url: &str, ca: &Path) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        control_plane(database_url, redis_url, ca)
            .arg("--migrate-only")
            .output(),
    )
    .await
    .expect("--migrate-only exits within 30 s")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_plane_talks_tls_to_postgres_and_redis_and_checks_who_answers() {
    let dir = tempfile::Builder::new()
        .prefix("nova-tls-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let certs = tls::make(&dir.path().join("certs"), "nova-test-ca");
    let stranger = tls::make(&dir.path().join("stranger"), "another-ca");
    let engines = Engines {
        postgres: Postgres::new(&dir.path().join("pg"), wait::free_port().unwrap())
            .unwrap()
            .with_tls(&certs.cert, &certs.key),
        redis: Redis::new(&dir.path().join("redis"), wait::free_port().unwrap())
            .with_tls(&certs.cert, &certs.key),
    };
    engines.postgres.start().unwrap();
    engines.redis.start().unwrap();
    engines.postgres.create_database("nova").unwrap();
    let port = engines.postgres.port();
    let redis_url = engines.redis.url();
    assert!(redis_url.starts_with("rediss://"), "{redis_url}");
    let ca = certs.ca.display().to_string();
    let url =
        |host: &str, options: &str| format!("postgres://postgres@{host}:{port}/nova?{options}");

    // What each sslmode lets through, as libpq users expect.
    let cases = [
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            true,
            "certificate for 127.0.0.1 from the trusted CA",
        ),
        (
            url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            false,
            "the certificate does not name localhost",
        ),
        (
            url("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}")),
            true,
            "verify-ca skips the host name",
        ),
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={}", stranger.ca.display()),
            ),
            false,
            "a CA we do not trust",
        ),
        (
            url("127.0.0.1", "sslmode=verify-full"),
            true,
            "the system store (SSL_CERT_FILE) holds the CA",
        ),
        (
            url("127.0.0.1", "sslmode=require"),
            true,
            "require encrypts without verifying",
        ),
        (
            url("127.0.0.1", ""),
            true,
            "the default (prefer) encrypts when the server offers TLS",
        ),
        (
            url("127.0.0.1", "sslmode=disable"),
            false,
            "this server refuses plaintext",
        ),
        (
            url("127.0.0.1", "sslmode=sometimes"),
            false,
            "an unknown sslmode is refused",
        ),
    ];
    for (database_url, expected, why) in &cases {
        let (ok, log) = migrate_only(database_url, &redis_url, &certs.ca).await;
        assert_eq!(ok, *expected, "{why}: {database_url}\n{log}");
        if !expected && why.contains("certificate") {
            assert!(
                log.to_lowercase().contains("certificate"),
                "{why}: the log says why\n{log}"
            );
        }
    }

    // Serving: every pooled PostgreSQL connection is TLS, and Redis speaks only TLS.
    let grpc = SocketAddr::from(([127, 0, 0, 1], wait::free_port().unwrap()));
    let token = random_token();
    let mut child = control_plane(
        &url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}&application_name=nova-tls-test"),
        ),
        &redis_url,
        &certs.ca,
    )
    .env("NOVA_GRPC_ADDR", grpc.to_string())
    .env("NOVA_SERVICE_TOKEN", &token)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait::until(
        "the control plane on TLS engines",
        Duration::from_secs(30),
        || wait::accepts(grpc),
    )
    .expect("the control plane listens");
    let base = format!("http://{grpc}");
    let stream = clients::streams(&base, Some(&token), Some("alice"))
        .await
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "over TLS".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("CreateStream over TLS PostgreSQL")
        .into_inner()
        .stream
        .unwrap();
    let joined = clients::sessions(&base, &token)
        .await
        .join_session(JoinSessionRequest {
            name: stream.name.clone(),
            viewer_id: "v1".into(),
            kind: ViewerKind::Web.into(),
            node: "tls-test".into(),
        })
        .await
        .expect("JoinSession over TLS Redis")
        .into_inner();
    assert_eq!(joined.viewer_count, 1);

    #[derive(diesel::QueryableByName, Debug)]
    struct Ssl {
        #[diesel(sql_type = BigInt)]
        connections: i64,
        #[diesel(sql_type = Bool)]
        all_tls: bool,
    }
    let mut admin = nova_control_plane::db::establish(
        &nova_control_plane::db::tls::Target::parse(&url("127.0.0.1", "sslmode=require")).unwrap(),
    )
    .await
    .unwrap();
    let ssl: Ssl = diesel::sql_query(
        "SELECT count(*) AS connections, coalesce(bool_and(s.ssl), false) AS all_tls \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'nova-tls-test'",
    )
    .get_result(&mut admin)
    .await
    .unwrap();
    assert!(ssl.connections > 0 && ssl.all_tls, "{ssl:?}");
    child.kill().await.unwrap();
    drop(engines);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_over_tls_serves_verified_clients_the_edge_and_grpcurl() {
    use nova_proto::v1::{ListStreamsRequest, stream_service_client::StreamServiceClient};
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let dir = tempfile::tempdir().unwrap();
    let certs = tls::make(&dir.path().join("certs"), "nova-grpc-ca");
    let (cert, key) = (certs.cert.clone(), certs.key.clone());
    let ctx = nova_tests::TestContext::start_with(move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let https = format!("https://{}", ctx.addr());
    let check = |endpoint: tonic::transport::Endpoint| async move {
        let channel = tokio::time::timeout(Duration::from_secs(10), endpoint.connect())
            .await
            .expect("a connection attempt ends within 10 s")
            .map_err(|e| format!("{e:?}"))?;
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status())
            .map_err(|e| format!("{e:?}"))
    };

    // A client trusting the CA is served; plaintext and unverified clients are not.
    let trusted = nova_runtime::grpc::endpoint(&https, Some(&certs.ca)).unwrap();
    assert_eq!(check(trusted.clone()).await, Ok(ServingStatus::Serving));
    let plaintext = nova_runtime::grpc::endpoint(&ctx.url(), None).unwrap();
    assert!(check(plaintext).await.is_err(), "plaintext to a TLS port");
    let system_store_only = nova_runtime::grpc::endpoint(&https, None).unwrap();
    assert!(
        check(system_store_only).await.is_err(),
        "a certificate from an unknown CA"
    );
    // A CA rotation (docs/security.md): a ca.crt holding the new CA and the old one
    // trusts a certificate from either; the other CA alone does not.
    let other = tls::make(&dir.path().join("other"), "nova-grpc-next-ca");
    let only_other = nova_runtime::grpc::endpoint(&https, Some(&other.ca)).unwrap();
    assert!(
        check(only_other).await.is_err(),
        "a CA that did not sign it"
    );
    let bundle = dir.path().join("both-ca.crt");
    let pem = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    std::fs::write(&bundle, format!("{}\n{}", pem(&other.ca), pem(&certs.ca))).unwrap();
    let both = nova_runtime::grpc::endpoint(&https, Some(&bundle)).unwrap();
    assert_eq!(
        check(both).await,
        Ok(ServingStatus::Serving),
        "a CA bundle trusts every CA in it"
    );
    assert!(
        nova_runtime::grpc::endpoint(&ctx.url(), Some(&certs.ca))
            .unwrap_err()
            .to_string()
            .contains("not https://"),
        "a CA for a plaintext URL is a configuration mistake"
    );

    // The service token still applies over TLS.
    let channel = trusted.connect().await.unwrap();
    let bearer = nova_runtime::grpc::Bearer::new(&ctx.token).unwrap();
    StreamServiceClient::with_interceptor(channel, bearer)
        .list_streams(ListStreamsRequest::default())
        .await
        .expect("ListStreams over TLS");

    // The edge reaches it by https:// with the CA.
    let mut config = nova_tests::edge::config(&ctx, "edge-tls");
    config.control_plane.url = https.clone();
    config.control_plane.ca = Some(certs.ca.clone());
    let edge = nova_edge::start(&config).await.unwrap();
    let ready =
        nova_tests::edge::call("GET", &format!("http://{}/readyz", edge.addr), None, None).await;
    assert_eq!(ready.status, 200, "{:?}", ready.json);
    let list = nova_tests::edge::call(
        "GET",
        &format!("http://{}/api/v1/streams", edge.addr),
        None,
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{:?}", list.json);
    edge.shutdown().await.unwrap();

    // grpcurl with the CA lists the services through reflection.
    let out = tokio::process::Command::new(nova_tests::tools::grpcurl())
        .args(["-max-time", "10", "-cacert"])
        .arg(&certs.ca)
        .arg(ctx.addr().to_string())
        .arg("list")
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains("nova.streaming.v1.StreamService"),
        "grpcurl -cacert: {listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_server_certificate_stops_start_up_naming_the_variables() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("cert.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let engines = nova_tests::context::Engines::get();
    let url = engines.fresh_database().await;
    let mut config = engines.config(&url, &random_token());
    config.tls_cert = Some(not_pem.clone());
    config.tls_key = Some(not_pem);
    let err = match nova_control_plane::start(&config).await {
        Ok(_) => panic!("a control plane started with a file that is not a certificate"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("NOVA_TLS_CERT / NOVA_TLS_KEY"), "{err}");
    // Nothing was migrated first: the check comes before anything else.
    let mut db = nova_control_plane::db::establish(
        &nova_control_plane::db::tls::Target::parse(&url).unwrap(),
    )
    .await
    .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let tables: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'streams'",
    )
    .get_result(&mut db)
    .await
    .unwrap();
    assert_eq!(tables.n, 0);
}
