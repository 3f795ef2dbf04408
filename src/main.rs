fn main() {
    println!("redsim: under construction");
}
