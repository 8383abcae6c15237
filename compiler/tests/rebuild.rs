//! Rebuild on edit: after a spec changes, `cargo build` regenerates its
//! module — through `smelt::protocol!` (the expansion `include_bytes!`s the
//! spec) and through `smelt_compiler::build` in a build script (which prints
//! `cargo:rerun-if-changed`). And a build with no change rebuilds nothing.
//!
//! Each test builds a scratch crate (see `scratch/mod.rs`), runs its binary,
//! edits the spec (a message renamed, a check's server count changed: both
//! visible in what the binary prints), builds and runs again. With the
//! scratch target warm the whole file takes 5–10 seconds (about 40 after a
//! change to smelt itself); a first run compiles smelt and its dependencies
//! into the scratch target first (2–3.5 minutes on 2 shared cores).

mod scratch;

use scratch::{compiler_dependency, smelt_dependency, Crate, Run};

/// `cargo run`, which must succeed; returns the run and whether cargo
/// compiled the scratch crate itself (rather than finding it fresh).
fn run(krate: &Crate, name: &str) -> (Run, bool) {
    let run = krate.cargo_ok(&["run"]);
    let compiled = run.stderr.contains(&format!("Compiling {name} "));
    eprintln!("{name}: cargo run took {:.1?} (compiled: {compiled})", run.took);
    (run, compiled)
}

/// Checks that a build with no change to the spec compiled nothing. The
/// scratch crates depend on the working tree, so an edit to smelt itself
/// while the test runs (another developer's) rightly rebuilds everything;
/// that run proves nothing either way and is not held against the spec.
fn assert_fresh(name: &str, run: &Run, compiled: bool) {
    let smelt_changed = run
        .stderr
        .lines()
        .any(|l| l.trim_start().starts_with("Compiling smelt"));
    if smelt_changed {
        eprintln!("{name}: smelt itself changed during the test; skipping the no-rebuild check");
        return;
    }
    assert!(!compiled, "{name}: an unchanged spec must not rebuild:\n{}", run.stderr);
}

const EDITED_V1: &str = "\
// A scratch spec that rebuild.rs edits.
protocol Edited

message Ping

role Node {
    init { broadcast peers Ping }
    on Ping {}
}

check small {
    servers 2
    network unordered
}
";

const MACRO_MAIN: &str = r#"smelt::protocol!("spec/edited.sm");

use edited::Edited;
use smelt::support::stateright::actor::{Id, Out};
use smelt::support::{Boot, Layout, Protocol};

fn main() {
    let check = &Edited::checks()[0];
    let node = Edited::server(Id::from(0), &Layout::new(&check.servers, 0)).unwrap();
    let mut out = Out::new();
    node.handle_start(Id::from(0), None, Boot::First, &mut out);
    println!("servers {:?}", check.servers);
    println!("start {out:?}");
}
"#;

#[test]
fn macro_rebuilds_when_the_spec_changes() {
    let name = "rebuild_macro";
    let krate = Crate::new(name, &format!("[dependencies]\n{}", smelt_dependency()));
    krate.write("src/main.rs", MACRO_MAIN);
    krate.write("spec/edited.sm", EDITED_V1);
    let (first, _) = run(&krate, name);
    assert_eq!(first.stdout, "servers [2]\nstart [Send(Id(1), Ping(Ping))]\n");

    // Nothing changed: nothing is compiled.
    let (same, compiled) = run(&krate, name);
    assert_fresh(name, &same, compiled);
    assert_eq!(same.stdout, first.stdout);

    // Rename the message and change the check's server count.
    let v2 = EDITED_V1
        .replace("message Ping", "message Poke")
        .replace("peers Ping", "peers Poke")
        .replace("on Ping", "on Poke")
        .replace("servers 2", "servers 3");
    assert!(krate.write("spec/edited.sm", &v2));
    let (second, compiled) = run(&krate, name);
    assert!(compiled, "an edited spec must rebuild:\n{}", second.stderr);
    assert_eq!(
        second.stdout,
        "servers [3]\nstart [Send(Id(1), Poke(Poke)), Send(Id(2), Poke(Poke))]\n"
    );
}

#[test]
fn build_script_reruns_when_the_spec_changes() {
    // A copy of compiler/examples/build_script_demo with absolute paths to
    // smelt, so that the test may edit its spec.
    let name = "rebuild_build_script";
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/build_script_demo");
    let read = |rel: &str| std::fs::read_to_string(format!("{demo}/{rel}")).expect("demo file");
    let krate = Crate::new(
        name,
        &format!(
            "[dependencies]\n{}\n[build-dependencies]\n{}",
            smelt_dependency(),
            compiler_dependency()
        ),
    );
    let spec = read("spec/ping_pong.sm");
    krate.write("build.rs", &read("build.rs"));
    krate.write("src/main.rs", &read("src/main.rs"));
    krate.write("spec/ping_pong.sm", &spec);
    let (first, _) = run(&krate, name);
    assert_eq!(
        first.stdout,
        "check small: servers [2]\n\
         start: [Send(Id(1), Ping(Ping { n: 1 }))]\n\
         ping 1: [Send(Id(1), Pong(Pong { n: 1 })), Save(Node(NodeStorage { pings: 1 }))]\n\
         ping 2: [Send(Id(1), Pong(Pong { n: 2 })), Save(Node(NodeStorage { pings: 2 }))]\n\
         node 0 received 2 pings\n"
    );

    let (same, compiled) = run(&krate, name);
    assert_fresh(name, &same, compiled);
    assert_eq!(same.stdout, first.stdout);

    // Rename the message `Pong` (main.rs does not name it) and change the
    // server count.
    let v2 = spec
        .replace("message Pong", "message Pang")
        .replace("src Pong", "src Pang")
        .replace("on Pong", "on Pang")
        .replace("servers 2", "servers 3");
    assert!(v2.contains("protocol PingPong"));
    assert!(krate.write("spec/ping_pong.sm", &v2));
    let (second, compiled) = run(&krate, name);
    assert!(compiled, "an edited spec must rebuild:\n{}", second.stderr);
    assert_eq!(
        second.stdout,
        "check small: servers [3]\n\
         start: [Send(Id(1), Ping(Ping { n: 1 })), Send(Id(2), Ping(Ping { n: 1 }))]\n\
         ping 1: [Send(Id(1), Pang(Pang { n: 1 })), Save(Node(NodeStorage { pings: 1 }))]\n\
         ping 2: [Send(Id(1), Pang(Pang { n: 2 })), Save(Node(NodeStorage { pings: 2 }))]\n\
         node 0 received 2 pings\n"
    );

    // A spec error stops the build with the spec's file:line:col.
    let broken = v2.replace("pings = pings + 1", "pings = true");
    assert!(krate.write("spec/ping_pong.sm", &broken));
    let failed = krate.cargo(&["build"]);
    assert!(!failed.ok, "a broken spec must fail the build");
    assert!(
        failed.stderr.contains("mismatched types") && failed.stderr.contains("spec/ping_pong.sm:16:17"),
        "the build script reports the spec error:\n{}",
        failed.stderr
    );
}

/// Renaming the protocol renames the generated file (`OUT_DIR/<module>.rs`).
/// The file generated before the rename must not stay in `OUT_DIR`: a crate
/// that still `include!`s the old name has to fail to build rather than
/// keep compiling against the stale module.
#[test]
fn build_script_protocol_rename_does_not_leave_a_stale_module() {
    let name = "rebuild_rename";
    let krate = Crate::new(
        name,
        &format!(
            "[dependencies]\n{}\n[build-dependencies]\n{}",
            smelt_dependency(),
            compiler_dependency()
        ),
    );
    krate.write("build.rs", "fn main() { smelt_compiler::build(\"spec/edited.sm\"); }\n");
    krate.write(
        "src/main.rs",
        "include!(concat!(env!(\"OUT_DIR\"), \"/edited.rs\"));\n\
         fn main() { println!(\"{}\", <edited::Edited as smelt::support::Protocol>::NAME); }\n",
    );
    krate.write("spec/edited.sm", EDITED_V1);
    let (first, _) = run(&krate, name);
    assert_eq!(first.stdout, "Edited\n");
    // Rename the protocol: the module is now `renamed` in `renamed.rs`.
    assert!(krate.write(
        "spec/edited.sm",
        &EDITED_V1.replace("protocol Edited", "protocol Renamed")
    ));
    let built = krate.cargo(&["run", "-q"]);
    let stale = built.ok;
    // Put the spec back for the next run.
    krate.write("spec/edited.sm", EDITED_V1);
    assert!(
        !stale,
        "main.rs still includes `edited.rs`, which the spec no longer generates, yet the crate built and printed {:?}",
        built.stdout
    );
}
