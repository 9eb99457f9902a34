//! Extraction in a separate process, so hostile input cannot take the analyzer down.
//!
//! [`crate::extract`] already bounds what it reads, inflates and keeps and runs under
//! `catch_unwind`; what it cannot stop in-process is an extractor that loops inside one
//! step (the deadline is checked between steps), allocates past what the machine has, or
//! dies in a way no unwind catches (stack overflow, abort). So the content consumer hands
//! each object to a worker process ([`Worker`]): the kuroko binary re-executed with a
//! hidden subcommand (`kuroko content-worker`) that lowers its priority, sets its own
//! rlimits (address space, CPU seconds) and then runs [`serve`].
//!
//! - A worker that spends more CPU time on one object than the object's time limit plus
//!   a grace period is killed (by its pid, `Child::kill`) and reaped: the object counts as
//!   `killed`. CPU time, not wall time: the worker runs at idle priority, and a busy
//!   analyzer may leave it no CPU for a while; an object must not be lost for that. A
//!   worker that has not answered after [`WorkerCommand::stall`] of wall time is killed
//!   whatever CPU it used (also `killed`).
//! - A worker that dies while extracting (memory limit, signal, abort) is reaped: the
//!   object counts as `crashed`.
//! - In both cases the next object starts a new worker; the consumer goes on.
//! - A worker past half of its CPU-seconds budget says so in its answer (`retire`) and
//!   exits; the next object starts a new one (no object is blamed for the wear).
//!
//! Protocol on the worker's stdin/stdout: per object one JSON line [`Request`] followed by
//! `len` raw bytes; the answer is one JSON line [`Response`].

use crate::{Extracted, Failure, Limits, Object, extract};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One object handed to a worker.
#[derive(Serialize, Deserialize, Debug)]
pub struct Request {
    pub kind: String,
    pub content_type: Option<String>,
    pub name: Option<String>,
    /// Bytes that follow the line.
    pub len: u64,
}

/// A worker's answer.
#[derive(Serialize, Deserialize, Debug)]
pub struct Response {
    pub result: Result<Extracted, Failure>,
    /// The worker exits after this answer (CPU budget worn); start a new one.
    #[serde(default)]
    pub retire: bool,
}

/// Longest request line a worker reads (kind, type and name are short).
const MAX_REQUEST_LINE: u64 = 64 << 10;

/// How often the consumer looks at a working worker's CPU time.
const POLL: Duration = Duration::from_millis(20);

/// CPU time (user + system) the process `pid` has used, from `/proc/PID/stat` (in clock
/// ticks of 1/100 s, Linux's USER_HZ).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // after its closing parenthesis (field 3 is the state; utime and stime are 14 and 15).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The worker side: answers requests from `input` on `output` until `input` ends.
/// `retire` is asked after each answer whether the worker should stop (its CPU budget).
pub fn serve(
    input: impl Read,
    mut output: impl Write,
    limits: &Limits,
    retire: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    let mut input = BufReader::new(input);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut input).take(MAX_REQUEST_LINE).read_line(&mut line)?;
        if n == 0 {
            return Ok(());
        }
        let req: Request = serde_json::from_str(line.trim_end())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if req.len > limits.max_input as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "object larger than the input limit",
            ));
        }
        let mut bytes = vec![0; req.len as usize];
        input.read_exact(&mut bytes)?;
        let obj = Object {
            kind: &req.kind,
            content_type: req.content_type.as_deref(),
            name: req.name.as_deref(),
        };
        let result = extract(obj, &bytes, limits);
        drop(bytes);
        let retire = retire();
        serde_json::to_writer(&mut output, &Response { result, retire })?;
        output.write_all(b"\n")?;
        output.flush()?;
        if retire {
            return Ok(());
        }
    }
}

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// CPU time past the object's own limit before the worker is killed.
    pub grace: Duration,
    /// Wall time after which a worker that has not answered is killed whatever CPU it
    /// used (blocked, or starved for that long). Make it generous: an idle-priority worker
    /// on a busy machine may wait long for the CPU.
    pub stall: Duration,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<io::Result<String>>,
}

/// The consumer side: one worker process at a time, started on demand.
pub struct Worker {
    cmd: WorkerCommand,
    running: Option<Running>,
    /// Workers started so far.
    pub started: u64,
}

impl Worker {
    pub fn new(cmd: WorkerCommand) -> Worker {
        Worker {
            cmd,
            running: None,
            started: 0,
        }
    }

    fn spawn(&mut self) -> io::Result<&mut Running> {
        if self.running.is_none() {
            let mut child = Command::new(&self.cmd.program)
                .args(&self.cmd.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdin = child.stdin.take().ok_or(io::ErrorKind::BrokenPipe)?;
            let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
            let (tx, answers) = mpsc::channel();
            // Reads answers so that the consumer can wait for one with a timeout; ends
            // when the worker's stdout closes (it exited or was killed).
            std::thread::Builder::new()
                .name("content-worker-out".into())
                .spawn(move || {
                    let mut out = BufReader::new(stdout);
                    loop {
                        let mut line = String::new();
                        match out.read_line(&mut line) {
                            Ok(0) => return,
                            Ok(_) => {
                                if tx.send(Ok(line)).is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                })?;
            self.started += 1;
            self.running = Some(Running {
                child,
                stdin,
                answers,
            });
        }
        Ok(self.running.as_mut().expect("just started"))
    }

    /// Kills (if still alive) and reaps the current worker.
    fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }

    /// The texts of `obj`, extracted by a worker (see the module docs). `Err(io)` only
    /// when no worker can be started at all (the caller then extracts in-process).
    pub fn extract(
        &mut self,
        obj: Object<'_>,
        bytes: &[u8],
        limits: &Limits,
    ) -> io::Result<Result<Extracted, Failure>> {
        if bytes.len() > limits.max_input {
            return Ok(Err(Failure::TooLarge));
        }
        let wait = limits.time + self.cmd.grace;
        let wall_limit = self.cmd.stall.max(wait);
        let run = self.spawn()?;
        let req = Request {
            kind: obj.kind.to_string(),
            content_type: obj.content_type.map(str::to_string),
            name: obj.name.map(str::to_string),
            len: bytes.len() as u64,
        };
        let sent = serde_json::to_vec(&req)
            .map_err(io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                run.stdin.write_all(&line)?;
                run.stdin.write_all(bytes)?;
                run.stdin.flush()
            });
        if sent.is_err() {
            // It died before taking the object (between two objects, or on its start).
            self.stop();
            return Ok(Err(Failure::Crashed));
        }
        let pid = run.child.id();
        let cpu_before = cpu_time(pid).unwrap_or_default();
        let started = std::time::Instant::now();
        let answer = loop {
            match run.answers.recv_timeout(POLL) {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let used = cpu_time(pid)
                        .map(|c| c.saturating_sub(cpu_before))
                        .unwrap_or_default();
                    if used > wait || started.elapsed() > wall_limit {
                        break Err(mpsc::RecvTimeoutError::Timeout);
                    }
                }
                other => break other,
            }
        };
        match answer {
            Ok(Ok(line)) => match serde_json::from_str::<Response>(line.trim_end()) {
                Ok(resp) => {
                    if resp.retire {
                        self.stop();
                    }
                    Ok(resp.result)
                }
                Err(_) => {
                    self.stop();
                    Ok(Err(Failure::Crashed))
                }
            },
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.stop();
                Ok(Err(Failure::Crashed))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.stop();
                Ok(Err(Failure::Killed))
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends a healthy worker; kill covers one that is stuck.
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> Object<'static> {
        Object {
            kind: "ftp",
            content_type: Some("text/plain"),
            name: Some("a.txt"),
        }
    }

    fn sh(script: &str) -> WorkerCommand {
        WorkerCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            grace: Duration::from_millis(200),
            stall: Duration::from_secs(2),
        }
    }

    #[test]
    fn serve_answers_each_object_and_retires_when_asked() {
        let limits = Limits::default();
        let mut input = Vec::new();
        for text in ["口座が凍結されました", "second"] {
            let req = Request {
                kind: "ftp".into(),
                content_type: Some("text/plain; charset=utf-8".into()),
                name: None,
                len: text.len() as u64,
            };
            input.extend(serde_json::to_vec(&req).unwrap());
            input.push(b'\n');
            input.extend(text.as_bytes());
        }
        let mut out = Vec::new();
        let mut answered = 0;
        serve(&input[..], &mut out, &limits, &mut || {
            answered += 1;
            false
        })
        .unwrap();
        let answers: Vec<Response> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(answers.len(), 2);
        assert_eq!(
            answers[0].result.as_ref().unwrap().texts[0].text,
            "口座が凍結されました"
        );
        let mut out = Vec::new();
        serve(&input[..], &mut out, &limits, &mut || true).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "retired");
    }

    #[test]
    fn a_worker_that_hangs_is_killed_and_the_next_object_gets_a_new_one() {
        // A stand-in for an extractor stuck in a loop: reads nothing, never answers.
        let limits = Limits {
            time: Duration::from_millis(100),
            ..Limits::default()
        };
        let mut w = Worker::new(sh("exec sleep 60"));
        let r = w.extract(obj(), b"hello", &limits).unwrap();
        assert_eq!(r, Err(Failure::Killed));
        assert!(w.running.is_none(), "killed and reaped");
        let r = w.extract(obj(), b"hello", &limits).unwrap();
        assert_eq!(r, Err(Failure::Killed));
        assert_eq!(w.started, 2);
    }

    #[test]
    fn a_worker_that_burns_cpu_is_killed_on_cpu_time_not_later() {
        // A stand-in for an extractor spinning inside one step.
        let limits = Limits {
            time: Duration::from_millis(100),
            ..Limits::default()
        };
        let mut w = Worker::new(WorkerCommand {
            stall: Duration::from_secs(3600),
            ..sh("while :; do :; done")
        });
        let r = w.extract(obj(), b"hello", &limits).unwrap();
        assert_eq!(
            r,
            Err(Failure::Killed),
            "killed for its CPU time (no stall in an hour)"
        );
    }

    #[test]
    fn a_starved_worker_that_answers_late_is_not_killed() {
        // A worker that gets no CPU for a while (idle priority on a busy box) and then
        // answers: more wall time than limit and grace, almost no CPU time.
        let limits = Limits {
            time: Duration::from_millis(100),
            ..Limits::default()
        };
        let answer =
            r#"{"result":{"Ok":{"texts":[],"truncated":false,"skipped":true}},"retire":false}"#;
        let mut w = Worker::new(WorkerCommand {
            stall: Duration::from_secs(30),
            ..sh(&format!(
                "head -c 1 >/dev/null; sleep 0.8; echo '{answer}'; exec sleep 60"
            ))
        });
        let r = w.extract(obj(), b"hello", &limits).unwrap();
        assert_eq!(
            r,
            Ok(Extracted {
                skipped: true,
                ..Default::default()
            })
        );
    }

    #[test]
    fn cpu_time_is_read_from_proc() {
        // Spins until the process's CPU time has grown by 100 ms (however long a loaded
        // machine takes to give it that), so the reading must move.
        let me = cpu_time(std::process::id()).expect("own /proc/PID/stat");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time(std::process::id()).unwrap() < me + Duration::from_millis(100) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "CPU time never grew"
            );
        }
    }

    #[test]
    fn a_worker_that_dies_counts_as_crashed() {
        // Reads its request, then dies the way an out-of-memory abort would.
        let limits = Limits::default();
        let mut w = Worker::new(sh("head -c 1 >/dev/null; kill -ABRT $$"));
        let r = w.extract(obj(), b"hello", &limits).unwrap();
        assert_eq!(r, Err(Failure::Crashed));
        assert!(w.running.is_none());
    }

    #[test]
    fn a_missing_worker_program_is_an_error_for_the_caller() {
        let mut w = Worker::new(WorkerCommand {
            program: "/nonexistent/kuroko".into(),
            args: vec![],
            grace: Duration::from_secs(1),
            stall: Duration::from_secs(1),
        });
        assert!(w.extract(obj(), b"x", &Limits::default()).is_err());
    }
}
