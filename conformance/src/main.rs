//! `herald-conformance --addr HOST:PORT`: one line per SPEC.md clause —
//! id, title, pass / fail / n/a, and the evidence of a failure — and a
//! non-zero exit if an applicable clause fails.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use herald_conformance::{run, Target, Tls, Verdict};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

#[derive(Parser)]
#[command(about = "Checks a RESP server against Herald's SPEC.md over the wire")]
struct Args {
    /// The server, host:port.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// AUTH's user name (default: the default user).
    #[arg(long)]
    user: Option<String>,
    /// AUTH's password, if the server wants one.
    #[arg(long)]
    password: Option<String>,
    /// Connect over TLS, trusting this CA certificate (PEM).
    #[arg(long)]
    tls_ca_cert: Option<String>,
    /// A client certificate (PEM) for servers that ask for one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// The client certificate's key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// The name the server's certificate carries.
    #[arg(long, default_value = "localhost")]
    tls_server_name: String,
    /// Only these clauses (ids such as 2.2, or sections such as 2); repeat
    /// or separate with commas.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// One JSON array of results instead of lines.
    #[arg(long)]
    json: bool,
    /// The seed of seeded inputs (default: random; a failure prints it).
    #[arg(long)]
    seed: Option<u64>,
    /// A cluster's nodes, host:port, comma-separated (`--addr` should be
    /// one of them): §9 is judged through them. A cluster node fails
    /// standalone clauses that shard channels elsewhere would (MOVED), so
    /// use it with `--only 9`.
    #[arg(long, value_delimiter = ',')]
    cluster_nodes: Vec<String>,
}

fn tls(args: &Args) -> Result<Option<Tls>, String> {
    let Some(ca) = &args.tls_ca_cert else { return Ok(None) };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots.add(cert.map_err(|e| format!("{ca}: {e}"))?).map_err(|e| format!("{ca}: {e}"))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())?
        }
        _ => builder.with_no_client_auth(),
    };
    let server_name = ServerName::try_from(args.tls_server_name.clone()).map_err(|e| e.to_string())?;
    Ok(Some(Tls { config: Arc::new(config), server_name }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut target = Target::new(args.addr.clone());
    target.user = args.user.clone();
    target.password = args.password.clone();
    if let Some(seed) = args.seed {
        target.seed = seed;
    }
    target.cluster = args.cluster_nodes.clone();
    target.tls = match tls(&args) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("herald-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let reports = run(&target, &args.only, |r| {
        if !args.json {
            println!("{:<5} {:<52} {}", r.clause.id, r.clause.title, r.verdict.word());
            match &r.verdict {
                Verdict::Fail(evidence) => println!("      {evidence}"),
                Verdict::NotApplicable(why) => println!("      ({why})"),
                Verdict::Pass => {}
            }
        }
    });
    if args.json {
        let rows: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let detail = match &r.verdict {
                    Verdict::Pass => None,
                    Verdict::Fail(text) | Verdict::NotApplicable(text) => Some(text.clone()),
                };
                serde_json::json!({
                    "id": r.clause.id,
                    "title": r.clause.title,
                    "verdict": r.verdict.word(),
                    "detail": detail,
                    "seconds": r.took.as_secs_f64(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    }
    let failed = reports.iter().filter(|r| matches!(r.verdict, Verdict::Fail(_))).count();
    if !args.json {
        let applicable = reports.iter().filter(|r| !matches!(r.verdict, Verdict::NotApplicable(_))).count();
        println!(
            "{} of {applicable} applicable clauses pass ({} not applicable)",
            applicable - failed,
            reports.len() - applicable
        );
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
