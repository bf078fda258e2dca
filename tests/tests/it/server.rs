//! Server life: health, graceful shutdown, replicas migrating one database at once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use nova_tests::{TestContext, clients, context};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_every_service_and_flips_to_not_serving_on_shutdown() {
    let mut ctx = TestContext::start().await;
    let mut health = HealthClient::new(clients::channel(&ctx.url()).await);
    for service in nova_control_plane::grpc::SERVICE_NAMES
        .into_iter()
        .chain([""])
    {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }

    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().expect("a first status");
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopping = tokio::spawn(async move { ctx.shutdown().await });
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("no health change within 5 s of shutdown")
        .expect("health stream broke before reporting")
        .expect("health stream ended before reporting");
    assert_eq!(next.status(), ServingStatus::NotServing);
    drop(watch);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown did not finish within 10 s")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_starting_together_migrate_once() {
    let engines = context::Engines::get();
    let url = engines.fresh_database().await;
    let token = context::random_token();
    let config = engines.config(&url, &token);
    let (a, b, c) = tokio::join!(
        nova_control_plane::start(&config),
        nova_control_plane::start(&config),
        nova_control_plane::start(&config)
    );
    let replicas = [a.unwrap(), b.unwrap(), c.unwrap()];

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut db =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url)
            .await
            .unwrap();
    let count: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut db)
        .await
        .unwrap();
    let embedded = std::fs::read_dir(nova_tests::tools::workspace_root().join("migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("up.sql").exists())
        .count();
    assert_eq!(count.n as usize, embedded);
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_with_migrate_only_migrates_and_exits_without_serving() {
    let engines = context::Engines::get();
    let url = engines.fresh_database().await;
    let run = || {
        let mut command = tokio::process::Command::new(
            nova_stack::stack::sibling_binary("nova-control-plane").expect("binary built"),
        );
        // A migration needs the database URL and nothing else (no service token).
        command
            .arg("--migrate-only")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NOVA_DATABASE_URL", &url)
            .kill_on_drop(true);
        command
    };
    for round in ["fresh database", "already migrated"] {
        let mut command = run();
        let out = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .unwrap_or_else(|_| panic!("{round}: --migrate-only did not exit within 30 s"))
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{round}: exit {:?}\n{log}",
            out.status
        );
        assert!(log.contains("database migrated; exiting"), "{round}: {log}");
    }
    // Serving still needs the admin token, and says so.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(
            nova_stack::stack::sibling_binary("nova-control-plane").expect("binary built"),
        )
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NOVA_DATABASE_URL", &url)
        .kill_on_drop(true)
        .output(),
    )
    .await
    .expect("a control plane without a token exits at once")
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served without a token: {log}");
    assert!(
        log.contains("NOVA_SERVICE_TOKEN is required to serve"),
        "{log}"
    );
    let mut db =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url)
            .await
            .unwrap();
    diesel::sql_query("SELECT 1 FROM streams LIMIT 1")
        .execute(&mut db)
        .await
        .expect("the streams table exists after --migrate-only");
}
