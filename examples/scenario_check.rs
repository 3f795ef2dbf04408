//! Load scenario files and print the result (or the error): `cargo run --example scenario_check FILE...`.
fn main() {
    for a in std::env::args().skip(1) {
        match redsim::scenario::load(std::path::Path::new(&a)) {
            Ok(s) => println!(
                "{a}: ok ({} nodes, {} faults)",
                s.nodes.len(),
                s.faults.len()
            ),
            Err(e) => println!("{e}"),
        }
    }
}
