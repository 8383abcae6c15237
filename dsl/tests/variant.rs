//! Variants (`variant.rs`): a spec stated as a change to another. Each
//! mistake in a variant is an error at the variant's line; an error in the
//! composed spec names the file and line it was written in.

use std::path::PathBuf;

const BASE: &str = r#"protocol Base

message Ping { n: u64 }

role Node {
    var pings: u64 = 0

    on Ping(m) from src {
        pings += 1
        send src Ping { n: m.n }
    }

    on Ping(m) from src when false {
        pings += 1
    }
}

check small {
    servers 2
    expect ok
}

check big {
    servers 3
    expect ok
}
"#;

/// A directory with `base.sm` and `v/x.sm` (the variant), removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(variant: &str) -> (Dir, smelt_dsl::Checked) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "smelt-variant-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("v")).unwrap();
    std::fs::write(dir.join("base.sm"), BASE).unwrap();
    std::fs::write(dir.join("v/x.sm"), variant).unwrap();
    let c = smelt_dsl::check_file(&dir.join("v/x.sm")).unwrap();
    (Dir(dir), c)
}

fn errors(variant: &str) -> String {
    let (_d, c) = check(variant);
    assert!(c.spec.is_none(), "no error in\n{variant}");
    // The temporary directory is not part of the message's shape.
    c.render_errors().replace(&c.file.name, "x.sm")
}

#[test]
fn a_variant_is_its_base_with_its_change() {
    let (_d, c) = check(
        "// comment\nvariant Mine of \"../base.sm\"\n\nchange {\n-        pings += 1\n-        send src Ping { n: m.n }\n+        send src Ping { n: m.n + 1 }\n     }\n}\n\nkeep check big expect violation handler_error\n",
    );
    // `}` alone ends a change; `     }` is a kept line.
    let spec = c.spec.as_ref().unwrap_or_else(|| panic!("{}", c.render_errors()));
    assert_eq!(spec.name, "Mine");
    assert!(
        c.file.text.contains("send src Ping { n: m.n + 1 }\n    }\n"),
        "{}",
        c.file.text
    );
    assert!(!c.file.text.contains("check small"), "{}", c.file.text);
    assert!(c
        .file
        .text
        .contains("check big {\n    servers 3\n    expect violation handler_error\n}"));
    assert!(c.base.as_ref().is_some_and(|b| b.ends_with("base.sm")));
}

#[test]
fn a_change_must_apply_exactly_once() {
    let e = errors("variant X of \"../base.sm\"\nchange {\n-        pings += 2\n}\n");
    assert!(
        e.contains("x.sm:2:1") && e.contains("this change does not apply"),
        "{e}"
    );
    let e = errors("variant X of \"../base.sm\"\nchange {\n-        pings += 1\n}\n");
    assert!(
        e.contains("x.sm:2:1") && e.contains("applies in 2 places") && e.contains("lines 9, 14"),
        "{e}"
    );
    let e = errors("variant X of \"../base.sm\"\nchange {\n         pings += 1\n}\n");
    assert!(e.contains("changes nothing"), "{e}");
    let e = errors("variant X of \"../base.sm\"\nchange {\n+        pings += 1\n}\n");
    assert!(e.contains("nothing to find"), "{e}");
    let e = errors("variant X of \"../base.sm\"\nchange {\n*    pings\n}\n");
    assert!(
        e.contains("x.sm:3:1") && e.contains("starts with `-`, `+` or a space"),
        "{e}"
    );
    let e = errors("variant X of \"../base.sm\"\nchange {\n-    var pings: u64 = 0\n");
    assert!(e.contains("not closed"), "{e}");
}

#[test]
fn a_change_may_not_edit_the_base_checks_or_name() {
    let e = errors("variant X of \"../base.sm\"\nchange {\n check small {\n-    servers 2\n+    servers 1\n}\n");
    assert!(
        e.contains("x.sm:2:1") && e.contains("overlaps the base's check `small`"),
        "{e}"
    );
    let e = errors("variant X of \"../base.sm\"\nchange {\n-protocol Base\n+protocol Y\n}\n");
    assert!(e.contains("overlaps the protocol's name"), "{e}");
}

#[test]
fn header_keep_and_base_errors_name_the_variant() {
    let e = errors("variant of \"../base.sm\"\n");
    assert!(e.contains("x.sm:1:1") && e.contains("malformed variant header"), "{e}");
    let e = errors("variant X of \"../nope.sm\"\n");
    assert!(e.contains("x.sm:1:15") && e.contains("cannot read the base"), "{e}");
    let e = errors("variant X of \"x.sm\"\n");
    assert!(e.contains("the base is a variant itself"), "{e}");
    let e = errors("variant X of \"../base.sm\"\nkeep check smal\n");
    assert!(e.contains("x.sm:2:12") && e.contains("did you mean `small`?"), "{e}");
    let e = errors("variant X of \"../base.sm\"\nkeep check small because\n");
    assert!(e.contains("malformed `keep`"), "{e}");
}

#[test]
fn errors_in_the_composed_spec_name_the_file_written() {
    // In a `+` line: the variant's line and column.
    let e = errors("variant X of \"../base.sm\"\nchange {\n-        send src Ping { n: m.n }\n+        send src Ping { n: m.nn }\n}\n");
    assert!(e.contains("x.sm:4:31"), "{e}");
    // Caused by the change, shown in the base: `pings` no longer exists.
    let e = errors("variant X of \"../base.sm\"\nchange {\n-    var pings: u64 = 0\n}\n");
    assert!(e.contains("base.sm:9:9"), "{e}");
    // In the variant's own checks, after the base.
    let e = errors("variant X of \"../base.sm\"\n\ncheck mine {\n    servers 2\n    expect violation Nope\n}\n");
    assert!(e.contains("x.sm:5:22"), "{e}");
}

#[test]
fn check_source_refuses_a_variant_it_cannot_resolve() {
    let c = smelt_dsl::check_source("x.sm", "// hi\nvariant X of \"base.sm\"\n");
    assert!(c.spec.is_none());
    assert!(c.render_errors().contains("this spec is a variant"));
}
