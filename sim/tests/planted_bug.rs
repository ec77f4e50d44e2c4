//! Proof that the simulation can fail: with Herald built with a planted
//! duplicate-delivery bug (`--features planted-bug`), some seed must be
//! caught, and the failure names the seed. scripts/test runs this.
#![cfg(feature = "planted-bug")]

#[test]
fn the_planted_duplicate_is_caught_with_its_seed() {
    let caught = (1..=20).find_map(|seed| herald_sim::chaos::run_checked(seed).err());
    let error = caught.expect("20 seeds ran with a planted duplicate-delivery bug and none failed");
    eprintln!("caught as expected: {}", error.lines().next().unwrap());
    assert!(error.starts_with("seed "), "the failure must name its seed: {error}");
    assert!(error.contains("delivered twice") || error.contains("delivered"), "{error}");
}
