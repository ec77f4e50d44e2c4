//! TLS (SPEC §7): a `--tls-port` beside the plain port, tested with
//! redis-cli --tls and the Herald client; client certificates required,
//! optional or off.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use herald_client::{Client, Config, Event, TlsConnector};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use support::{free_port, herald_process_with, Conn, Server};

/// A CA, a server certificate for localhost/127.0.0.1 and a client
/// certificate, written as PEM files to a fresh directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("herald-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Herald test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf = |names: Vec<String>, purpose| {
            let mut p = CertificateParams::new(names).unwrap();
            p.extended_key_usages = vec![purpose];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server, server_key) =
            leaf(vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth);
        let (client, client_key) = leaf(vec!["herald-test-client".into()], ExtendedKeyUsagePurpose::ClientAuth);
        for (file, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("server.pem", server),
            ("server.key", server_key),
            ("client.pem", client),
            ("client.key", client_key),
        ] {
            std::fs::write(dir.join(file), pem).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// Herald with plain TCP and TLS; `auth_clients` is yes, optional or no.
    fn herald(&self, auth_clients: &str) -> (Server, u16) {
        let tls_port = free_port();
        let flags = [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &self.path("server.pem"),
            "--tls-key-file",
            &self.path("server.key"),
            "--tls-ca-cert-file",
            &self.path("ca.pem"),
            "--tls-auth-clients",
            auth_clients,
        ]
        .map(String::from);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        (herald_process_with(free_port(), &flags), tls_port)
    }

    /// redis-cli over TLS, with or without the client certificate.
    fn redis_cli(&self, port: u16, with_cert: bool, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--tls", "--cacert", &self.path("ca.pem"), "-p", &port.to_string()]);
        if with_cert {
            cmd.args(["--cert", &self.path("client.pem"), "--key", &self.path("client.key")]);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success() && !text.contains("Could not") && !text.contains("error"), text)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn redis_cli_over_tls_beside_plain_tcp() {
    let pki = Pki::new("cli");
    let (h, tls_port) = pki.herald("yes");
    assert_eq!(pki.redis_cli(tls_port, true, &["PING"]), (true, "PONG\n".into()));
    let (_, sub) = pki.redis_cli(tls_port, true, &["PUBSUB", "NUMSUB", "x"]);
    assert_eq!(sub, "x\n0\n");
    // Plain TCP keeps working on its own port.
    let plain = Command::new("redis-cli").args(["-p", &h.port.to_string(), "PING"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "PONG\n");
    // Client certificates are required by default.
    let (ok, text) = pki.redis_cli(tls_port, false, &["PING"]);
    assert!(!ok, "served without a client certificate: {text}");
    // ...and served again right after.
    assert_eq!(pki.redis_cli(tls_port, true, &["PING"]).1, "PONG\n");
}

#[test]
fn optional_and_no_client_certificates() {
    let pki = Pki::new("optional");
    let (_h, tls_port) = pki.herald("optional");
    assert_eq!(pki.redis_cli(tls_port, false, &["PING"]).1, "PONG\n");
    assert_eq!(pki.redis_cli(tls_port, true, &["PING"]).1, "PONG\n");
    let (_h, tls_port) = pki.herald("no");
    assert_eq!(pki.redis_cli(tls_port, false, &["PING"]).1, "PONG\n");
}

#[tokio::test]
async fn herald_client_subscribes_over_tls_publisher_on_plain_tcp() {
    let pki = Pki::new("client");
    let (h, tls_port) = pki.herald("yes");
    let tls =
        TlsConnector::from_pem_files(&pki.path("ca.pem"), Some((&pki.path("client.pem"), &pki.path("client.key"))))
            .unwrap();
    let secure = Client::with_connector(Config::new(format!("localhost:{tls_port}")), Arc::new(tls)).await.unwrap();
    let mut sub = secure.subscribe(&["secure-news"]).await.unwrap();
    let publisher = Client::connect(h.addr()).await.unwrap();
    assert_eq!(publisher.publish("secure-news", "over tls").await.unwrap(), 1);
    match sub.next().await {
        Some(Ok(Event::Message(m))) => assert_eq!(&m.payload[..], b"over tls"),
        other => panic!("expected the message, got {other:?}"),
    }
    // Without a client certificate the handshake is refused.
    let bare = TlsConnector::from_pem_files(&pki.path("ca.pem"), None).unwrap();
    let refused = async {
        let c = Client::with_connector(Config::new(format!("localhost:{tls_port}")), Arc::new(bare)).await?;
        c.ping().await
    };
    assert!(refused.await.is_err());
}

/// The cluster bus does not speak TLS, so `tls-cluster yes` is refused in
/// cluster mode (SPEC §9.4), at start and by CONFIG SET, rather than
/// leaving the bus in the clear where TLS was asked for. Standalone, it is
/// taken as Redis takes it.
#[test]
fn tls_cluster_is_refused_in_cluster_mode() {
    let pki = Pki::new("cluster");
    let port = free_port();
    let nodes = format!("127.0.0.1:{port}@{},127.0.0.1:{}@{}", free_port(), free_port(), free_port());
    let tls = || {
        [
            "--tls-port".to_string(),
            free_port().to_string(),
            "--tls-cert-file".into(),
            pki.path("server.pem"),
            "--tls-key-file".into(),
            pki.path("server.key"),
            "--tls-ca-cert-file".into(),
            pki.path("ca.pem"),
        ]
    };
    let conf = pki.dir.join("tls-cluster.conf");
    std::fs::write(&conf, "tls-cluster yes\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--check-config")
        .arg(&conf)
        .args(["--port", &port.to_string(), "--cluster-nodes", &nodes])
        .args(tls())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("Herald's cluster bus does not speak TLS"), "{text}");

    let node_tls = tls();
    let mut flags: Vec<&str> = vec!["--cluster-nodes", &nodes];
    flags.extend(node_tls.iter().map(String::as_str));
    let node = herald_process_with(port, &flags);
    let mut c = Conn::open(node.port);
    let refused = c.cmd(&["CONFIG", "SET", "tls-cluster", "yes"]);
    assert!(String::from_utf8_lossy(&refused).contains("Herald's cluster bus does not speak TLS"), "{refused:?}");
    assert_eq!(&c.cmd(&["CONFIG", "GET", "tls-cluster"])[..], b"*2\r\n$11\r\ntls-cluster\r\n$2\r\nno\r\n");

    // Standalone, as Redis: TLS is configured once everything is read, so
    // tls-cluster may come before the certificate, but needs one.
    let check = |lines: String| {
        let conf = pki.dir.join("standalone.conf");
        std::fs::write(&conf, lines).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_herald")).arg("--check-config").arg(&conf).output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let certificate = format!(
        "tls-port {}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
        free_port(),
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem")
    );
    let (ok, text) = check(format!("tls-cluster yes\n{certificate}"));
    assert!(ok, "{text}");
    let (ok, text) = check("tls-replication yes\n".into());
    assert!(!ok && text.contains("No tls-cert-file configured!"), "{text}");
    let standalone_tls = tls();
    let standalone = herald_process_with(free_port(), &standalone_tls.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(&Conn::open(standalone.port).cmd(&["CONFIG", "SET", "tls-cluster", "yes"])[..], b"+OK\r\n");
}
