//! A TCP proxy on loopback that can cut every connection and refuse new ones, then let them
//! in again on the same port: a network fault between a client and a server that keeps its
//! state. It can also send new connections to another server, as a Service in front of a
//! cluster does when a node goes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub address: String,
    target: Arc<Mutex<String>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accepted: Arc<(AtomicUsize, Notify)>,
}

impl Proxy {
    /// A proxy to `target` on a free loopback port.
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            address: listener.local_addr().unwrap().to_string(),
            target: Arc::new(Mutex::new(target.to_owned())),
            tasks: Arc::default(),
            accepted: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = Arc::clone(&self.target);
        let tasks = Arc::clone(&self.tasks);
        let accepted = Arc::clone(&self.accepted);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                accepted.0.fetch_add(1, Ordering::SeqCst);
                accepted.1.notify_waiters();
                let target = target.lock().unwrap().clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Sends new connections to `target` from now on (a Service whose backend moved);
    /// connections already made stay where they are.
    pub fn switch_to(&self, target: &str) {
        *self.target.lock().unwrap() = target.to_owned();
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.0.load(Ordering::SeqCst)
    }

    /// Waits until more than `count` connections have been accepted.
    pub async fn wait_for_more_than(&self, count: usize) {
        loop {
            let notified = self.accepted.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.accepted() > count {
                return;
            }
            notified.await;
        }
    }

    /// Cuts every connection and stops listening; returns once the port is free.
    pub async fn cut(&self) {
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().unwrap().drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // An aborted task has dropped its sockets once it is joined.
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(&self.address).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
