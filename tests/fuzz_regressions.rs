//! Replays fuzz/seeds and every input the fuzzers ever found
//! (fuzz/regressions/TARGET/) through the same checks the fuzz targets run.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails again", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn request_decoder_inputs() {
    assert!(replay("request_decoder", herald::fuzzing::request_decoder) > 0);
}

#[test]
fn glob_inputs() {
    assert!(replay("glob", herald::fuzzing::glob_agrees) > 0);
}

#[test]
fn session_inputs() {
    assert!(replay("session", herald::fuzzing::session) > 0);
}
