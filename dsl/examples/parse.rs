fn main() {
    for path in std::env::args().skip(1) {
        let t = std::time::Instant::now();
        let c = smelt_dsl::check_file(std::path::Path::new(&path)).unwrap();
        let el = t.elapsed();
        print!("{}", c.render(false));
        println!(
            "{}: spec={} diags={} {:?}",
            path,
            c.spec.is_some(),
            c.diagnostics.len(),
            el
        );
    }
}
