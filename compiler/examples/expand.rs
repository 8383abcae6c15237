fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("spec path");
    let support = args.next().unwrap_or_else(|| "::smelt::support".into());
    let text = std::fs::read_to_string(&path).unwrap();
    let opts = smelt_compiler::Options { support_path: support };
    match smelt_compiler::expand(&path, &text, &opts) {
        Ok((_, tokens)) => print!("{}", smelt_compiler::pretty(&tokens)),
        Err(e) => {
            eprint!("{e}");
            std::process::exit(1)
        }
    }
}
