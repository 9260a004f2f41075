//! A plain WASI command: a valid component of the wrong world, which the
//! module registry must refuse with a message naming what is missing.

fn main() {
    println!("I am not a Weft workflow");
}
