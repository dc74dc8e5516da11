//! Google's Pub/Sub emulator for tests: the one `PUBSUB_EMULATOR_HOST` names, or one started
//! here on a free loopback port and stopped when dropped. Missing emulator = failure with
//! instructions, never a silent skip.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LAUNCHER: &str =
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

pub struct Emulator {
    /// `host:port`, as `PUBSUB_EMULATOR_HOST` spells it.
    pub host: String,
    child: Option<Child>,
}

impl Emulator {
    /// The emulator named by `PUBSUB_EMULATOR_HOST`, or a fresh one.
    pub fn start() -> Self {
        if let Ok(host) = std::env::var("PUBSUB_EMULATOR_HOST") {
            return Self { host, child: None };
        }
        Self::start_fresh()
    }

    /// Always a fresh emulator of our own (for tests that stop and restart it).
    pub fn start_fresh() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// A fresh emulator on `port`.
    pub fn start_on(port: u16) -> Self {
        let launcher = launcher();
        let child = Command::new(&launcher)
            .args(["--host=127.0.0.1", &format!("--port={port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the Pub/Sub emulator {}: {e}",
                    launcher.display()
                )
            });
        let emulator = Self {
            host: format!("127.0.0.1:{port}"),
            child: Some(child),
        };
        emulator.wait_ready();
        emulator
    }

    /// Polls `GET /` until the emulator answers `Ok` (about 1.5 s after start).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if ping(&self.host) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the Pub/Sub emulator on {} did not become ready within 60 s",
            self.host
        );
    }

    /// Stops the emulator.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The launcher execs the JVM, so the child is the emulator itself.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.host
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn launcher() -> PathBuf {
    let path = PathBuf::from(LAUNCHER);
    if path.exists() {
        return path;
    }
    let from_dpkg = Command::new("dpkg")
        .args(["-L", "google-cloud-cli-pubsub-emulator"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.ends_with("bin/cloud-pubsub-emulator"))
                .map(PathBuf::from)
        });
    from_dpkg.unwrap_or_else(|| {
        panic!(
            "Google's Pub/Sub emulator is not installed. Install the Debian package \
             google-cloud-cli-pubsub-emulator (it needs Java 17), or start an emulator and set \
             PUBSUB_EMULATOR_HOST=host:port."
        )
    })
}

fn ping(host: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.ends_with("Ok") || response.contains("\r\n\r\nOk")
}

/// An emulator (ours, or the one `PUBSUB_EMULATOR_HOST` names) with an admin and a transport
/// for `project`, and a topic named `{prefix}-{pid}` with a subscription `{topic}-sub` on it
/// configured by `config`.
#[cfg(feature = "pubsub")]
pub async fn with_subscription(
    project: &str,
    prefix: &str,
    config: &hyperfleet_tracing::transport::SubscriptionConfig,
) -> Emulated {
    use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let settings = PubSubConfig::new(project).emulator(&emulator.host);
    let admin = PubSubAdmin::connect(settings.clone()).await.unwrap();
    let transport = PubSubTransport::connect(settings).await.unwrap();
    let topic = format!("{prefix}-{}", std::process::id());
    let subscription = format!("{topic}-sub");
    admin.create_topic_if_missing(&topic).await.unwrap();
    admin
        .create_subscription_if_missing(&subscription, &topic, config)
        .await
        .unwrap();
    Emulated {
        _emulator: emulator,
        admin,
        transport,
        topic,
        subscription,
    }
}

/// What [`with_subscription`] set up; the emulator stops when it is dropped.
#[cfg(feature = "pubsub")]
pub struct Emulated {
    _emulator: Emulator,
    pub admin: hyperfleet_tracing::transport::pubsub::PubSubAdmin,
    pub transport: hyperfleet_tracing::transport::pubsub::PubSubTransport,
    pub topic: String,
    pub subscription: String,
}
