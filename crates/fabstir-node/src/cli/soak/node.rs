//! The node under soak: started as a child process (`serve` on a free
//! loopback port), stopped with SIGKILL or SIGTERM, started again on the
//! same data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a node may take to print its listening line (the first start
/// creates the development keys).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a node may take to stop after SIGTERM before it is killed.
pub const TERM_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the node could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot start the node binary {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("the node did not print its listening line within {seconds} s; its log is {log}")]
    NotListening { seconds: u64, log: PathBuf },
    #[error("the node exited before listening ({status}); its log is {log}")]
    ExitedEarly { status: String, log: PathBuf },
    #[error("the node's first line is not its start-up JSON with a listening address: {line}")]
    BadStartLine { line: String },
    #[error("cannot open the node's log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How to start the node.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    /// Extra `serve` arguments (`--result-retention 0` included when the
    /// binary has the flag).
    pub serve_args: Vec<String>,
    /// Standard error of every start is appended here.
    pub log: PathBuf,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub started: Instant,
    /// Milliseconds from spawn to the listening line.
    pub ready_ms: u64,
    /// The start-up line.
    pub start_line: Value,
}

/// How a node was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Kill,
    Term,
}

impl Stop {
    /// The signal's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "SIGKILL",
            Self::Term => "SIGTERM",
        }
    }
}

/// What stopping a node found.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub status: String,
    /// Milliseconds from the signal to the exit.
    pub stop_ms: u64,
    /// SIGTERM was not enough within [`TERM_TIMEOUT`]; the node was killed.
    pub term_timed_out: bool,
    /// The exit was clean (status 0): expected after SIGTERM.
    pub clean: bool,
}

/// Whether `binary serve --help` lists `flag`.
pub fn serve_has_flag(binary: &Path, flag: &str) -> bool {
    Command::new(binary)
        .args(["serve", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                .any(|word| word == flag)
        })
        .unwrap_or(false)
}

impl Node {
    /// Starts a node and waits for its listening line.
    pub fn start(launch: &Launch) -> Result<Self, NodeError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log)
            .map_err(|source| NodeError::Log {
                path: launch.log.clone(),
                source,
            })?;
        let spawned = Instant::now();
        let mut command = Command::new(&launch.binary);
        die_with_parent(&mut command);
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(&launch.data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(&launch.serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| NodeError::Spawn {
                binary: launch.binary.clone(),
                source,
            })?;
        let pid = child.id();
        let stdout = child.stdout.take();
        // The first line arrives on a thread, so that a node that hangs
        // cannot hang the soak run; the rest of its output is drained.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let Some(stdout) = stdout else {
                let _ = tx.send(None);
                return;
            };
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line).ok().filter(|n| *n > 0);
            let _ = tx.send(read.map(|_| line));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string());
                return Err(NodeError::ExitedEarly {
                    status,
                    log: launch.log.clone(),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NodeError::NotListening {
                    seconds: START_TIMEOUT.as_secs(),
                    log: launch.log.clone(),
                });
            }
        };
        let start_line: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
        let Some(address) = start_line["listening"].as_str() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NodeError::BadStartLine {
                line: line.trim().chars().take(300).collect(),
            });
        };
        Ok(Self {
            url: format!("http://{address}"),
            child,
            pid,
            started: spawned,
            ready_ms: spawned.elapsed().as_millis() as u64,
            start_line,
        })
    }

    /// The exit status, if the node exited (on its own).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the node with `how` and waits for it to exit.
    pub fn stop(mut self, how: Stop) -> Stopped {
        let signalled = Instant::now();
        let mut term_timed_out = false;
        match how {
            Stop::Kill => {
                let _ = self.child.kill();
            }
            Stop::Term => {
                if !terminate(self.pid) {
                    let _ = self.child.kill();
                }
                let deadline = signalled + TERM_TIMEOUT;
                while self.exited().is_none() {
                    if Instant::now() >= deadline {
                        term_timed_out = true;
                        let _ = self.child.kill();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let status = self.child.wait();
        Stopped {
            clean: status.as_ref().is_ok_and(|s| s.success()),
            status: status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
            stop_ms: signalled.elapsed().as_millis() as u64,
            term_timed_out,
        }
    }
}

/// Makes the node die with the soak run (Linux: the parent-death signal),
/// so that a soak run killed mid-way leaves no node behind.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// Sends SIGTERM; false when it could not be sent.
#[cfg(unix)]
fn terminate(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill only sends a signal to the child this run started (and
    // has not reaped yet, so the pid cannot have been reused).
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

#[cfg(not(unix))]
fn terminate(_pid: u32) -> bool {
    false
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for the node: a shell script with `body`.
    fn fake_node(dir: &Path, body: &str) -> Launch {
        let binary = dir.join("fake-node");
        std::fs::write(&binary, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Launch {
            binary,
            data_dir: dir.join("data"),
            serve_args: vec![],
            log: dir.join("node.log"),
        }
    }

    #[test]
    fn the_retention_flag_is_found_in_serve_help() {
        let dir = tempfile::tempdir().expect("tempdir");
        let with = fake_node(
            dir.path(),
            r#"echo "      --result-retention <DURATION>  Delete prompt and response text [env: X=]""#,
        );
        assert!(serve_has_flag(&with.binary, "--result-retention"));
        assert!(!serve_has_flag(&with.binary, "--result"));
        let without = fake_node(dir.path(), r#"echo "      --queue-capacity <N>""#);
        assert!(!serve_has_flag(&without.binary, "--result-retention"));
        assert!(!serve_has_flag(
            &dir.path().join("missing"),
            "--result-retention"
        ));
    }

    #[test]
    fn a_node_that_listens_is_started_and_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Logs, prints its start-up line, then serves until SIGTERM, which
        // it answers with a clean exit (the log line comes first, so it is
        // written before the start-up line is read).
        let launch = fake_node(
            dir.path(),
            r#"trap 'exit 0' TERM
echo "serving" >&2
echo '{"listening": "127.0.0.1:4321", "resumed_jobs": 2}'
while true; do sleep 0.05; done"#,
        );
        let mut node = Node::start(&launch).expect("started");
        assert_eq!(node.url, "http://127.0.0.1:4321");
        assert_eq!(node.start_line["resumed_jobs"], 2);
        assert!(node.exited().is_none());
        let stopped = node.stop(Stop::Term);
        assert!(stopped.clean && !stopped.term_timed_out, "{stopped:?}");
        let log = std::fs::read_to_string(&launch.log).expect("log");
        assert!(log.contains("serving"), "{log}");

        let node = Node::start(&launch).expect("started again");
        let killed = node.stop(Stop::Kill);
        assert!(!killed.clean, "{killed:?}");
        assert!(killed.status.contains("signal"), "{killed:?}");
    }

    #[test]
    fn a_node_that_does_not_start_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let early = fake_node(dir.path(), "echo 'config refused' >&2; exit 2");
        match Node::start(&early) {
            Err(NodeError::ExitedEarly { status, .. }) => assert!(status.contains('2'), "{status}"),
            other => panic!("expected ExitedEarly, got {other:?}"),
        }
        let odd = fake_node(dir.path(), "echo 'hello'; exec sleep 5");
        match Node::start(&odd) {
            Err(NodeError::BadStartLine { line }) => assert_eq!(line, "hello"),
            other => panic!("expected BadStartLine, got {other:?}"),
        }
        let missing = Launch {
            binary: dir.path().join("no-such-binary"),
            ..early
        };
        assert!(matches!(
            Node::start(&missing),
            Err(NodeError::Spawn { .. })
        ));
    }
}
