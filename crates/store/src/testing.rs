//! For tests (feature `testing`): a real etcd cluster on loopback ports, made of Debian's
//! `etcd` binary (`BERTH_ETCD_BIN` overrides where it is), in a temporary directory, with
//! members that can be killed and restarted. Every cluster is its own: tests never share
//! one, so revisions and keys are the test's alone.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{EtcdConfig, EtcdStore, Store};

/// One member: its name, its client and peer addresses, its process while it runs.
struct Member {
    name: String,
    client: String,
    peer: String,
    child: Option<Child>,
}

pub struct EtcdCluster {
    binary: PathBuf,
    /// Clients must speak TLS and show a certificate (`start_tls`).
    tls: bool,
    dir: PathBuf,
    token: String,
    members: Vec<Member>,
    keep_logs: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl EtcdCluster {
    /// The etcd binary, when installed.
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("BERTH_ETCD_BIN") {
            return Some(PathBuf::from(path));
        }
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    }

    /// Starts `members` members and waits until the cluster serves linearizable reads;
    /// `None` when etcd is not installed.
    pub fn start(members: usize) -> Option<EtcdCluster> {
        let binary = EtcdCluster::binary()?;
        // Ports are picked free, then bound by etcd: another process may take one in
        // between, and the member exits. Start again on fresh ports then.
        for _ in 0..4 {
            if let Some(cluster) = EtcdCluster::try_start(&binary, members, false) {
                return Some(cluster);
            }
        }
        panic!("etcd did not start in four tries on fresh ports (its logs were kept)");
    }

    /// Like `start`, with client URLs on TLS that require a client certificate
    /// (`--client-cert-auth`), all made by `openssl` in the cluster's directory.
    pub fn start_tls(members: usize) -> Option<EtcdCluster> {
        let binary = EtcdCluster::binary()?;
        for _ in 0..4 {
            if let Some(cluster) = EtcdCluster::try_start(&binary, members, true) {
                return Some(cluster);
            }
        }
        panic!("etcd did not start in four tries on fresh ports (its logs were kept)");
    }

    fn try_start(binary: &Path, members: usize, tls: bool) -> Option<EtcdCluster> {
        let unique = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let dir = std::env::temp_dir().join(format!("berth-etcd-{unique}"));
        std::fs::create_dir_all(&dir).expect("etcd test dir");
        let members = (0..members)
            .map(|i| Member {
                name: format!("m{i}"),
                client: format!("127.0.0.1:{}", free_port()),
                peer: format!("127.0.0.1:{}", free_port()),
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster {
            binary: binary.to_owned(),
            tls,
            dir,
            token: format!("berth-test-{unique}"),
            members,
            keep_logs: false,
        };
        if tls {
            make_certificates(&cluster.dir);
        }
        for i in 0..cluster.members.len() {
            cluster.spawn(i);
        }
        if cluster.wait_ready() {
            Some(cluster)
        } else {
            // Keep the logs of a cluster that did not start; the next try has its own dir.
            cluster.keep_logs = true;
            None
        }
    }

    fn spawn(&mut self, i: usize) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect();
        let member = &self.members[i];
        let data = self.dir.join(&member.name);
        let scheme = if self.tls { "https" } else { "http" };
        let tls_args: Vec<String> = if self.tls {
            let file = |name: &str| self.dir.join(name).display().to_string();
            vec![
                "--cert-file".into(),
                file("server.crt"),
                "--key-file".into(),
                file("server.key"),
                "--trusted-ca-file".into(),
                file("ca.crt"),
                "--client-cert-auth".into(),
            ]
        } else {
            Vec::new()
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", member.name)))
            .expect("etcd log file");
        let child = Command::new(&self.binary)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                &format!("{scheme}://{}", member.client),
            ])
            .args([
                "--advertise-client-urls",
                &format!("{scheme}://{}", member.client),
            ])
            .args(&tls_args)
            .args(["--listen-peer-urls", &format!("http://{}", member.peer)])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://{}", member.peer),
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            // Berth's settings for etcd (docs/replicas.md).
            .args(["--max-txn-ops", "10000", "--max-request-bytes", "10485760"])
            .args(["--log-level", "warn", "--logger", "zap"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        self.members[i].child = Some(child);
    }

    /// Waits until a linearizable read succeeds through every running member; `false` when
    /// a member exited (its port was taken).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                continue;
            }
            let m = &self.members[i];
            let config = EtcdConfig {
                endpoints: vec![m.client.clone()],
                ..self.config()
            };
            loop {
                if EtcdStore::open(config.clone())
                    .and_then(|s| s.current_revision())
                    .is_ok()
                {
                    break;
                }
                let exited = self.members[i]
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some());
                if exited {
                    return false;
                }
                let m = &self.members[i];
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} did not become ready; logs in {}",
                    m.name,
                    self.dir.display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        true
    }

    /// Every member's `HOST:PORT`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    /// `etcd://A,B,C` for `berth server --store`.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.endpoints().join(","))
    }

    pub fn config(&self) -> EtcdConfig {
        EtcdConfig {
            endpoints: self.endpoints(),
            namespace: EtcdConfig::DEFAULT_NAMESPACE.to_owned(),
            tls: self.tls.then(|| crate::EtcdTls {
                ca: self.dir.join("ca.crt"),
                client: Some((self.dir.join("client.crt"), self.dir.join("client.key"))),
            }),
        }
    }

    /// Where members keep data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its data (after `kill`) and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        assert!(
            self.wait_ready(),
            "etcd member {i} did not restart; logs in {}",
            self.dir.display()
        );
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if !self.keep_logs && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, by `openssl`.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian's openssl package)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=berth-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    run(&ca);
    for (name, extensions) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let subject = format!("/CN=berth-test-{name}");
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req", "-subj", &subject];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr]);
        run(&req);
        std::fs::write(dir.join(&ext), extensions).unwrap();
        run(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ]);
    }
}
