//! The analyzer's CPU guarantee (issue 15, `kuroko_analyzer::placement`): with the default
//! placement, the analyzer gets a share of a core that a normal-priority CPU hog keeps busy
//! (under SCHED_IDLE, the policy before, it got ~0), and it never takes the capture's CPU:
//! it stays off `[capture] cores`, and on a core it shares with an unpinned capture the
//! capture keeps ≥ 80 % of what the two use.
//!
//! Figures are same-run ratios of thread CPU clocks of threads pinned to one core (what
//! other work on the machine takes, it takes from all of them), never wall-clock timings.

use kuroko_analyzer::placement::Placement;
use kuroko_analyzer::sys;
use kuroko_model::config::Config;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// How long the threads compete.
const WINDOW: Duration = Duration::from_secs(3);

/// What a thread sets up before it spins.
#[derive(Clone)]
enum Role {
    /// A normal-priority task (nice 0), pinned to the core.
    Normal(usize),
    /// The analyzer: `kuroko analyze` applies the placement of its config.
    Analyzer(Box<Config>),
}

/// One competition at a time (the tests of this file share the core).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs one busy thread per role, all at once, for [`WINDOW`]; each one's CPU time.
fn compete(roles: &[Role]) -> Vec<Duration> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(roles.len() + 1));
    let threads: Vec<_> = roles
        .iter()
        .cloned()
        .map(|role| {
            let (stop, ready) = (stop.clone(), ready.clone());
            std::thread::spawn(move || {
                match role {
                    Role::Normal(core) => {
                        sys::set_nice(0).expect(
                            "setting a test thread to nice 0 (run as root, or not under `nice`)",
                        );
                        sys::pin_current_thread(&[core]).expect("pinning the hog");
                    }
                    Role::Analyzer(config) => {
                        // Started at normal priority, as `kuroko run` starts it (the test
                        // itself may run under `nice`).
                        sys::set_nice(0).expect("setting a test thread to nice 0");
                        let problems = sys::become_background(&Placement::from_config(&config));
                        assert!(problems.is_empty(), "{problems:?}");
                    }
                }
                ready.wait();
                let start = sys::thread_cpu_time();
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                sys::thread_cpu_time() - start
            })
        })
        .collect();
    ready.wait();
    std::thread::sleep(WINDOW);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The last core this process may use (the one the test's threads share).
fn a_core() -> usize {
    *sys::current_affinity().unwrap().last().unwrap()
}

fn analyzer_on(core: usize) -> Config {
    let mut c = Config::default();
    c.analyzer.cores = vec![core];
    c
}

#[test]
fn the_analyzer_gets_cpu_beside_a_normal_priority_hog_on_its_core() {
    let core = a_core();
    let mut idle = analyzer_on(core);
    idle.analyzer.cpu_priority = "idle".into();
    let t = compete(&[
        Role::Normal(core),
        Role::Analyzer(Box::new(analyzer_on(core))),
        Role::Analyzer(Box::new(idle)),
    ]);
    let (hog, analyzer, idle) = (t[0].as_secs_f64(), t[1].as_secs_f64(), t[2].as_secs_f64());
    eprintln!(
        "core {core}, {WINDOW:?}: hog {hog:.3} s, analyzer (default placement) {analyzer:.3} s, \
         analyzer SCHED_IDLE {idle:.3} s; default/hog {:.3} (nice 10 against nice 0: 110/1024 \
         = 0.107), idle/hog {:.4} (3/1024 = 0.003)",
        analyzer / hog,
        idle / hog
    );
    assert!(
        hog > 0.1,
        "the hog got no CPU ({hog} s): the core is not ours"
    );
    assert!(
        analyzer / hog >= 0.04,
        "the analyzer got {analyzer:.3} s of CPU against the hog's {hog:.3} s \
         (ratio {:.4}; a tenth is what nice 10 gives)",
        analyzer / hog
    );
    assert!(
        analyzer >= 5.0 * idle,
        "the default placement ({analyzer:.3} s) is not above SCHED_IDLE ({idle:.3} s)"
    );
}

#[test]
fn capture_first_the_analyzer_stays_off_capture_cores_and_yields_a_shared_one() {
    let cores = sys::current_affinity().unwrap();
    let core = a_core();
    // Dedicated capture cores: the analyzer's affinity leaves them out.
    if cores.len() >= 2 {
        let mut c = Config::default();
        c.capture.cores = vec![core];
        let affinity = std::thread::spawn(move || {
            let problems = sys::become_background(&Placement::from_config(&c));
            assert!(problems.is_empty(), "{problems:?}");
            sys::current_affinity().unwrap()
        })
        .join()
        .unwrap();
        assert!(
            !affinity.contains(&core) && !affinity.is_empty(),
            "the analyzer may run on the capture core {core}: {affinity:?}"
        );
    } else {
        eprintln!("one CPU only: the dedicated-core case needs two");
    }
    // An unpinned capture (no `[capture] cores`, a development box) sharing a core with a
    // busy analyzer: capture at normal priority keeps most of it.
    let t = compete(&[
        Role::Normal(core),
        Role::Analyzer(Box::new(analyzer_on(core))),
    ]);
    let (capture, analyzer) = (t[0].as_secs_f64(), t[1].as_secs_f64());
    let share = capture / (capture + analyzer).max(1e-9);
    eprintln!(
        "core {core}, {WINDOW:?}: capture-like thread {capture:.3} s, analyzer {analyzer:.3} s; \
         capture's share {share:.3} (1024/1134 = 0.90)"
    );
    assert!(
        share >= 0.8,
        "capture kept only {share:.3} of a core it shares with the analyzer"
    );
}
