//! Generates `OUT_DIR/ping_pong.rs` from the spec; cargo re-runs this
//! script (and so rebuilds the crate) when the spec changes.

fn main() {
    smelt_compiler::build("spec/ping_pong.sm");
}
