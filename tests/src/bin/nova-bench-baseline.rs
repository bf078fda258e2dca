//! `nova-bench-baseline FRAME_BYTES`: the benchmarks' baseline WebSocket server, a
//! bare axum server as anyone would start it (default buffers, the system
//! allocator): sends one frame of `FRAME_BYTES` (the size of the edge's snapshot),
//! then reads until the client leaves. Prints its address on the first line. A
//! binary of its own so that the bench's allocator (the services' mimalloc) does not
//! become the baseline's.

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::net::SocketAddr;

use axum::{
    Router,
    extract::ws::{Message, WebSocketUpgrade},
    routing::get,
};

fn main() {
    let frame_bytes: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("usage: nova-bench-baseline FRAME_BYTES");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(serve(frame_bytes));
}

async fn serve(frame_bytes: usize) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind 127.0.0.1");
    println!("{}", listener.local_addr().expect("the bound address"));
    let frame = format!(
        "{{\"type\":\"snapshot\",\"padding\":\"{}\"}}",
        "x".repeat(frame_bytes.saturating_sub(32))
    );
    let app = Router::new().route(
        "/ws",
        get(move |ws: WebSocketUpgrade| {
            let frame = frame.clone();
            async move {
                ws.on_upgrade(move |mut socket| async move {
                    if socket.send(Message::text(frame)).await.is_ok() {
                        while let Some(Ok(_)) = socket.recv().await {}
                    }
                })
            }
        }),
    );
    axum::serve(listener, app).await.expect("serve");
}
