//! A private RabbitMQ node for a test: Debian's `rabbitmq-server` started on free loopback
//! ports in a fresh directory, with an `epmd` of its own, both stopped when dropped. The
//! machine's shared node is never touched. A missing server fails with instructions.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

fn node_dir(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("hyperfleet-rabbit-{}-{port}", std::process::id()))
}

pub struct RabbitNode {
    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub url: String,
    pub port: u16,
    /// The Erlang node name, `test{port}@localhost`.
    pub name: String,
    epmd_port: u16,
    /// Whether the epmd is this node's alone (a cluster's nodes share theirs).
    own_epmd: bool,
    dir: PathBuf,
    child: Option<Child>,
}

use super::free_port;

impl RabbitNode {
    /// Starts a node and waits until its AMQP port answers.
    pub fn start() -> Self {
        let (port, dist, epmd_port) = (free_port(), free_port(), free_port());
        let mut node = Self::start_in(node_dir(port), port, dist, epmd_port);
        node.own_epmd = true;
        node
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
            name: format!("test{port}@localhost"),
            epmd_port,
            own_epmd: false,
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

    /// Stops the node (its whole process group, with `SIGKILL`) and its own epmd.
    pub fn stop(&mut self) {
        self.kill();
        if self.own_epmd {
            stop_epmd(self.epmd_port);
        }
    }

    /// Kills the node's whole process group with `SIGKILL`, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = child.id() as i32;
            // SAFETY: signalling a process group this test started.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    /// CPU time the node's processes (its process group: the script, the Erlang VM) have
    /// used so far, at the kernel's clock-tick resolution, and the read calls they made.
    pub fn cpu_and_reads(&self) -> (Duration, u64) {
        let Some(group) = self.child.as_ref().map(Child::id) else {
            return (Duration::ZERO, 0);
        };
        let (mut ticks, mut reads) = (0, 0);
        for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(process.path().join("stat")).unwrap_or_default();
            // After the command's closing parenthesis: state, ppid, pgrp, … utime, stime.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            let number = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if fields.len() < 13 || number(2) != u64::from(group) {
                continue;
            }
            ticks += number(11) + number(12);
            let io = std::fs::read_to_string(process.path().join("io")).unwrap_or_default();
            reads += io
                .lines()
                .find_map(|line| line.strip_prefix("syscr: "))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        // SAFETY: sysconf with a constant name has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        (Duration::from_secs_f64(ticks as f64 / per_second), reads)
    }

    /// Runs `rabbitmqctl` against this node; its output, or a panic with what it printed.
    pub fn ctl(&self, args: &[&str]) -> String {
        let output = Command::new(CTL)
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("HOME", &self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {CTL}: {e}"));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} on {} failed: {text}{}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// Forgets everything a killed node kept (its definitions and messages), as a broker pod
    /// without a volume does when it restarts.
    pub fn wipe(&mut self) {
        assert!(self.child.is_none(), "wipe a killed node only");
        let mnesia = self.dir.join("mnesia");
        std::fs::remove_dir_all(&mnesia).unwrap();
        std::fs::create_dir_all(&mnesia).unwrap();
    }

    /// Starts a stopped node again on the same port and data (the second half of a broker
    /// restart).
    pub fn start_again(&mut self) {
        let dir = self.dir.clone();
        let mut fresh = Self::start_in(dir, self.port, free_port(), self.epmd_port);
        fresh.own_epmd = self.own_epmd;
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

/// Private nodes clustered with `rabbitmqctl join_cluster`, sharing one epmd and one Erlang
/// cookie; all stopped when dropped.
pub struct RabbitCluster {
    pub nodes: Vec<RabbitNode>,
    epmd_port: u16,
}

impl RabbitCluster {
    /// Starts `size` nodes at once, then joins every other node to the first.
    pub fn start(size: usize) -> Self {
        let epmd_port = free_port();
        let cookie = format!("hyperfleet{}{epmd_port}", std::process::id());
        let starting: Vec<_> = (0..size)
            .map(|_| {
                let (port, dist) = (free_port(), free_port());
                let dir = node_dir(port);
                std::fs::create_dir_all(&dir).unwrap();
                write_cookie(&dir, &cookie);
                std::thread::spawn(move || RabbitNode::start_in(dir, port, dist, epmd_port))
            })
            .collect();
        let nodes: Vec<RabbitNode> = starting
            .into_iter()
            .map(|node| node.join().expect("a node started"))
            .collect();
        let cluster = Self { nodes, epmd_port };
        for node in &cluster.nodes[1..] {
            node.ctl(&["stop_app"]);
            node.ctl(&["join_cluster", &cluster.nodes[0].name]);
            node.ctl(&["start_app"]);
        }
        cluster
    }

    /// Every node's URL, comma-separated, in the order of `order`.
    pub fn urls(&self, order: &[usize]) -> String {
        let urls: Vec<&str> = order.iter().map(|i| self.nodes[*i].url.as_str()).collect();
        urls.join(",")
    }

    /// The index of the node that holds `queue`'s quorum leader, asked of node `via`.
    pub fn leader_of(&self, queue: &str, via: usize) -> usize {
        let listing = self.nodes[via].ctl(&[
            "list_queues",
            "name",
            "leader",
            "--quiet",
            "--no-table-headers",
        ]);
        let leader = listing
            .lines()
            .filter_map(|line| line.split_once(char::is_whitespace))
            .find(|(name, _)| *name == queue)
            .map(|(_, leader)| leader.trim().to_owned())
            .unwrap_or_else(|| panic!("{queue} not in {listing}"));
        self.nodes
            .iter()
            .position(|node| node.name == leader)
            .unwrap_or_else(|| panic!("the leader {leader} is not a node of the cluster"))
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        stop_epmd(self.epmd_port);
    }
}

/// The Erlang cookie nodes and `rabbitmqctl` read from `$HOME`, readable by its owner only.
fn write_cookie(home: &std::path::Path, cookie: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = home.join(".erlang.cookie");
    std::fs::write(&path, cookie).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
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
    use hyperfleet_tracing::transport::rabbitmq::QueueKind;
    declare(transport, topic, queue, QueueKind::Classic).await;
}

/// The exchange of `topic` and its queue `queue` of `kind`, each declared unless it exists.
pub async fn declare(
    transport: &hyperfleet_tracing::transport::rabbitmq::RabbitMqTransport,
    topic: &str,
    queue: &str,
    kind: hyperfleet_tracing::transport::rabbitmq::QueueKind,
) {
    use hyperfleet_tracing::transport::SubscriptionConfig;
    use hyperfleet_tracing::transport::rabbitmq::RabbitMqAdmin;
    let admin = RabbitMqAdmin::new(transport);
    admin.create_topic_if_missing(topic).await.unwrap();
    admin
        .create_subscription_if_missing(queue, topic, kind, &SubscriptionConfig::default())
        .await
        .unwrap();
}
