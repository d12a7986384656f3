//! PLACEHOLDER until the translation lands.
fn main() {}
