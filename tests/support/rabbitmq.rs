//! A private RabbitMQ node for a test: Debian's `rabbitmq-server` started on free loopback
//! ports in a fresh directory, with an `epmd` of its own, both stopped when dropped. The
//! machine's shared node is never touched. A missing server fails with instructions.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

pub struct RabbitNode {
    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub url: String,
    pub port: u16,
    epmd_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

use super::free_port;

impl RabbitNode {
    /// Starts a node and waits until its AMQP port answers.
    pub fn start() -> Self {
        let (port, dist, epmd_port) = (free_port(), free_port(), free_port());
        let dir =
            std::env::temp_dir().join(format!("hyperfleet-rabbit-{}-{port}", std::process::id()));
        Self::start_in(dir, port, dist, epmd_port)
    }

    fn start_in(dir: PathBuf, port: u16, dist: u16, epmd_port: u16) -> Self {
        let script = PathBuf::from(SCRIPT);
        assert!(
            script.exists(),
            "RabbitMQ is not installed ({SCRIPT} missing): install Debian's rabbitmq-server \
             (`apt-get install -y rabbitmq-server`; scripts/test does it when it is missing)"
        );
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("enabled_plugins"), "[].").unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        let child = Command::new(&script)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_NODENAME", format!("test{port}@localhost"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", dir.join("feature_flags"))
            .env("HOME", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SCRIPT}: {e}"));
        let node = Self {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            port,
            epmd_port,
            dir,
            child: Some(child),
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the RabbitMQ node on port {} did not answer within 60 s (logs in {})",
            self.port,
            self.dir.join("log").display()
        );
    }

    /// Stops the node (its whole process group) and its epmd.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = child.id() as i32;
            // SAFETY: signalling a process group this test started.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
            let _ = child.wait();
        }
        stop_epmd(self.epmd_port);
    }

    /// Starts a stopped node again on the same port and data (the second half of a broker
    /// restart).
    pub fn start_again(&mut self) {
        let dir = self.dir.clone();
        let fresh = Self::start_in(dir, self.port, free_port(), self.epmd_port);
        // The old value's directory is the new one's: keep it.
        let old = std::mem::replace(self, fresh);
        std::mem::forget(old);
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the epmd that listens on `port` (the node started it as a daemon, outside its
/// process group).
fn stop_epmd(port: u16) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let marker = format!("ERL_EPMD_PORT={port}");
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has_port = environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes());
        if comm.trim() == "epmd" && has_port {
            // SAFETY: signalling the epmd this test's node started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// hyperfleet-broker's topology on `transport`'s broker: the exchange of `topic` and its
/// classic queue `queue`, each declared unless it exists.
pub async fn declare_classic(
    transport: &hyperfleet_tracing::transport::rabbitmq::RabbitMqTransport,
    topic: &str,
    queue: &str,
) {
    use hyperfleet_tracing::transport::SubscriptionConfig;
    use hyperfleet_tracing::transport::rabbitmq::{QueueKind, RabbitMqAdmin};
    let admin = RabbitMqAdmin::new(transport);
    admin.create_topic_if_missing(topic).await.unwrap();
    let config = SubscriptionConfig::default();
    admin
        .create_subscription_if_missing(queue, topic, QueueKind::Classic, &config)
        .await
        .unwrap();
}
