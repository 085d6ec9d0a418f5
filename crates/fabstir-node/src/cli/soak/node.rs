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
        let mut child = Command::new(&launch.binary)
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
