//! A TCP proxy on loopback for partition tests: forwards every connection to its
//! upstream until [`ChaosProxy::cut`], which drops every open connection and closes
//! new ones at once (a peer that went away), until [`ChaosProxy::heal`].

use std::net::SocketAddr;

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A running proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct ChaosProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where connections go; `None` until set.
    upstream: watch::Sender<Option<SocketAddr>>,
    /// `true` while cut.
    cut: watch::Sender<bool>,
    /// The accept loop.
    task: tokio::task::JoinHandle<()>,
}

impl ChaosProxy {
    /// Listens on a free loopback port; connections go to `upstream` once it is set
    /// (until then they are closed at once).
    pub async fn start(upstream: Option<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the chaos proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (cut, cut_rx) = watch::channel(false);
        let (upstream, upstream_rx) = watch::channel(upstream);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = *upstream_rx.borrow();
                match target {
                    Some(target) if !*cut_rx.borrow() => {
                        tokio::spawn(forward(client, target, cut_rx.clone()));
                    }
                    _ => drop(client),
                }
            }
        });
        Self {
            addr,
            upstream,
            cut,
            task,
        }
    }

    /// Sets where connections go.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.upstream.send_replace(Some(upstream));
    }

    /// Drops every open connection and closes new ones until [`Self::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
