//! Deployment: `smelt build` makes an executable that runs a cluster
//! without cargo, the smelt sources or the spec, and the examples in
//! `deploy/` (a systemd unit, a Dockerfile) agree with it.

mod common;

use common::smelt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `[Section]`s and `Key=Value`s of a systemd unit, in order.
fn unit_entries(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: neither a section nor Key=Value: {line}", n + 1));
        assert!(!section.is_empty(), "line {}: a key before any section", n + 1);
        assert!(
            k.chars().all(|c| c.is_ascii_alphanumeric()),
            "line {}: bad key {k:?}",
            n + 1
        );
        out.push((section.clone(), k.to_string(), v.to_string()));
    }
    out
}

fn unit_text() -> String {
    std::fs::read_to_string(format!("{ROOT}/deploy/smelt-node@.service")).unwrap()
}

/// The unit's `ExecStart`, split into words.
fn exec_start() -> Vec<String> {
    let entries = unit_entries(&unit_text());
    let exec: Vec<&(String, String, String)> = entries.iter().filter(|(_, k, _)| k == "ExecStart").collect();
    assert_eq!(exec.len(), 1);
    assert_eq!(exec[0].0, "Service");
    exec[0].2.split_whitespace().map(String::from).collect()
}

#[test]
fn the_deployment_examples_are_well_formed() {
    // The systemd unit: the sections a service needs, keys in the right
    // ones, and an ExecStart that runs one node with the runtime's options.
    let entries = unit_entries(&unit_text());
    let sections: Vec<&str> = entries.iter().map(|(s, _, _)| s.as_str()).collect();
    for s in ["Unit", "Service", "Install"] {
        assert!(sections.contains(&s), "no [{s}]");
    }
    for (section, key) in [
        ("Service", "Restart"),
        ("Service", "RestartPreventExitStatus"),
        ("Unit", "StartLimitBurst"),
        ("Install", "WantedBy"),
    ] {
        assert!(
            entries.iter().any(|(s, k, _)| s == section && k == key),
            "no {key}= in [{section}]"
        );
    }
    let exec = exec_start();
    assert!(Path::new(&exec[0]).is_absolute(), "{exec:?}");
    assert_eq!(exec[1], "run");
    for flag in ["--id", "--cluster", "--data-dir"] {
        assert!(exec.iter().any(|w| w == flag), "ExecStart lacks {flag}: {exec:?}");
    }
    // Exit statuses the unit treats as "do not restart" are the runtime's
    // usage and corruption statuses.
    let prevent = entries
        .iter()
        .find(|(_, k, _)| k == "RestartPreventExitStatus")
        .map(|(_, _, v)| v.clone())
        .unwrap();
    assert_eq!(
        prevent,
        format!(
            "{} {}",
            smelt::runtime::cli::EXIT_USAGE,
            smelt::runtime::cli::EXIT_CORRUPT
        )
    );

    // The Dockerfile: known instructions only; the image copies what the
    // build stage's `smelt build -o` wrote, and runs it.
    let docker = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
    const KNOWN: [&str; 12] = [
        "FROM",
        "RUN",
        "COPY",
        "WORKDIR",
        "ENV",
        "EXPOSE",
        "VOLUME",
        "USER",
        "ENTRYPOINT",
        "CMD",
        "ARG",
        "LABEL",
    ];
    let mut continued = false;
    let mut instructions: Vec<String> = Vec::new();
    for line in docker.lines() {
        let t = line.trim();
        if continued {
            // Comment lines may sit inside an instruction.
            if !t.starts_with('#') {
                let last = instructions.last_mut().unwrap();
                last.push(' ');
                last.push_str(t.trim_end_matches('\\').trim());
                continued = t.ends_with('\\');
            }
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let word = t.split_whitespace().next().unwrap();
        assert!(KNOWN.contains(&word), "unknown instruction {word:?} in: {line}");
        instructions.push(t.trim_end_matches('\\').trim().to_string());
        continued = t.ends_with('\\');
    }
    let find = |prefix: &str| -> Vec<&String> { instructions.iter().filter(|i| i.starts_with(prefix)).collect() };
    assert_eq!(find("FROM").len(), 2, "a build stage and the image");
    let build = find("RUN")
        .into_iter()
        .find(|r| r.contains("smelt build"))
        .expect("a `smelt build` step");
    let out = build
        .split_whitespace()
        .skip_while(|w| *w != "-o")
        .nth(1)
        .expect("-o DIR");
    let spec = build.split_whitespace().find(|w| w.ends_with(".sm")).expect("a spec");
    assert!(Path::new(ROOT).join(spec).is_file(), "{spec}");
    let stem = Path::new(spec).file_stem().unwrap().to_string_lossy().into_owned();
    let copy = find("COPY --from=build");
    assert_eq!(copy.len(), 1);
    let words: Vec<&str> = copy[0].split_whitespace().collect();
    assert_eq!(
        words[2],
        format!("{out}/{stem}"),
        "the image copies the built executable"
    );
    let entry = find("ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry[0].trim_start_matches("ENTRYPOINT").trim()).expect("JSON form");
    assert_eq!(
        entry,
        vec![words[3].to_string()],
        "the entry point is the copied executable"
    );
}

/// A port free now (the kernel's choice).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `bin args` with an environment holding no cargo, no Rust and no
/// sources: PATH points nowhere, HOME is a scratch directory.
fn bare(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", "/nonexistent")
        .env("HOME", dir)
        .current_dir(dir);
    c
}

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
#[ignore = "deep: builds raft.sm's runtime executable (a minute or two) and runs a 3-node cluster"]
fn a_built_executable_runs_a_cluster_without_cargo_sources_or_spec() {
    use sha2::Digest;
    let dir = std::env::temp_dir().join(format!("smelt-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("spec")).unwrap();
    // Built from a copy of the spec, which is then deleted: the executable
    // needs neither it nor the sources nor cargo.
    let text = std::fs::read(format!("{ROOT}/specs/raft.sm")).unwrap();
    let spec = dir.join("spec").join("raft.sm");
    std::fs::write(&spec, &text).unwrap();
    let out = dir.join("out");
    let (code, stdout, err) = smelt(&["build", spec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{err}");
    std::fs::remove_dir_all(dir.join("spec")).unwrap();
    let bin = out.join("raft");
    let sha = format!("{:x}", sha2::Sha256::digest(&text));

    let v = bare(&bin, &dir).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success());
    assert!(
        version.contains(&format!("smelt {}", env!("CARGO_PKG_VERSION"))) && version.contains(&sha),
        "{version}"
    );
    assert!(version.contains("protocol Raft"), "{version}");

    // Three nodes, each started by the systemd unit's ExecStart.
    let nodes: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut toml = String::from("cluster_id = \"deploy-test\"\n");
    for (i, (peer, client)) in nodes.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[node]]\nid = {i}\nrole = \"Server\"\naddress = \"127.0.0.1:{peer}\"\nclient_address = \"127.0.0.1:{client}\"\n"
        ));
    }
    let cluster = dir.join("cluster.toml");
    std::fs::write(&cluster, toml).unwrap();
    // Mutual TLS, as README's "Deploying" shows it.
    let (code, stdout, err) = smelt(&["certs", "--cluster", cluster.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{err}");
    let with_tls = std::fs::read_to_string(&cluster).unwrap();
    assert!(
        with_tls.contains("[tls]") && with_tls.contains("node-2.key"),
        "{with_tls}"
    );
    assert!(dir.join("cluster.toml.before-tls").exists());
    let again = smelt(&["certs", "--cluster", cluster.to_str().unwrap()]);
    assert_eq!(again.0, Some(2), "a second `smelt certs` must not replace the CA");
    let exec = exec_start();
    let mut running = Nodes(Vec::new());
    for i in 0..3 {
        let args: Vec<String> = exec[1..]
            .iter()
            .map(|w| {
                w.replace("%i", &i.to_string())
                    .replace("/etc/smelt/cluster.toml", cluster.to_str().unwrap())
                    .replace("/var/lib/smelt", dir.join("data").to_str().unwrap())
            })
            .collect();
        let log = std::fs::File::create(dir.join(format!("node-{i}.log"))).unwrap();
        let child = bare(&bin, &dir)
            .args(&args)
            .env("SMELT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        running.0.push(child);
    }
    let client = |args: &[&str]| {
        bare(&bin, &dir)
            .args(["client", "--cluster", cluster.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    // The first request waits for an election; the client retries itself
    // (10 attempts of 1 s), and this loop gives a slow machine more.
    let deadline = Instant::now() + Duration::from_secs(60);
    let put = loop {
        let o = client(&["put", "7", "deployed"]);
        if o.status.success() || Instant::now() > deadline {
            break o;
        }
    };
    let logs = || {
        (0..3)
            .map(|i| std::fs::read_to_string(dir.join(format!("node-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert!(
        put.status.success(),
        "put: {}\n{}\n{}",
        String::from_utf8_lossy(&put.stdout),
        String::from_utf8_lossy(&put.stderr),
        logs()
    );
    let get = client(&["get", "7"]);
    let got = String::from_utf8_lossy(&get.stdout);
    assert!(get.status.success() && got.contains("deployed"), "get: {got}");
    // The operator's view: every node answers `admin status`, over TLS.
    let status = bare(&bin, &dir)
        .args(["admin", "status", "--cluster", cluster.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(table.matches("Server/Leader").count(), 1, "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    // A client with another CA's certificate gets no answer.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    let ca = smelt_runtime::tls::Authority::new("foreign", 30).unwrap();
    let id = ca.issue("client", &["client".to_string()], -1, 30).unwrap();
    std::fs::write(foreign.join("c.pem"), &id.cert_pem).unwrap();
    std::fs::write(foreign.join("c.key"), &id.key_pem).unwrap();
    let (c, k) = (foreign.join("c.pem"), foreign.join("c.key"));
    let refused = client(&[
        "--attempts",
        "1",
        "--tls-cert",
        c.to_str().unwrap(),
        "--tls-key",
        k.to_str().unwrap(),
        "get",
        "7",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // SIGTERM (systemd's stop): each node exits cleanly.
    for c in &running.0 {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    for (i, c) in running.0.iter_mut().enumerate() {
        // Waits for the exit itself (the node bounds its own shutdown flush).
        let status = c.wait().unwrap();
        assert_eq!(status.code(), Some(0), "node {i}\n{}", logs());
    }
    // The data directories are where the unit says.
    for i in 0..3 {
        assert!(dir.join("data").join(format!("node-{i}")).join("LOCK").exists());
    }
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}
