//! Prints one chaos seed's plan, its check and a subscriber's events:
//! `cargo run -p herald-sim --example chaos_seed -- <seed> [subscriber]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).expect("a seed");
    let sub: Option<usize> = args.next().and_then(|s| s.parse().ok());
    println!("{:#?}", herald_sim::chaos::Plan::from_seed(seed));
    let outcome = herald_sim::chaos::run(seed).expect("the run");
    match herald_sim::chaos::check(&outcome.plan, &outcome.record) {
        Ok(()) => println!("passes"),
        Err(v) => println!("fails: {v}"),
    }
    if let Some(i) = sub {
        for e in &outcome.record.subscribers[i] {
            println!("{e:?}");
        }
    }
    println!("{:?}", outcome.record.final_state);
}
