//! Key lifecycle as an operator runs it: `keys verify`, encrypted backup and
//! restore, and rotation while the node serves (picked up on SIGHUP, with
//! proofs made before the rotation still verifying, also after a restart).

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{binary, cli, result, DataDir, Node};
use serde_json::{json, Value};

fn stdout_json(output: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs a command with `input` on standard input.
fn cli_with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn keys_verify_passes_and_names_the_failing_check() {
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    assert!(cli(&["keygen", "--keys-dir", s(&keys)]).status.success());
    let output = cli(&["keys", "verify", "--keys-dir", s(&keys)]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let report = stdout_json(&output);
    assert_eq!(report["ok"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "manifest",
        "srs_pin",
        "permissions",
        "proving_key",
        "verifying_key",
        "host_key",
        "pairing",
        "constraints",
        "canary_proof",
    ] {
        assert!(names.contains(&name), "missing check {name}: {names:?}");
    }

    // Each kind of damage is named.
    chmod(&keys.join("host.key"), 0o644);
    let report = stdout_json(&cli(&["keys", "verify", "--keys-dir", s(&keys)]));
    assert_eq!(report["failed_check"], "permissions");
    chmod(&keys.join("host.key"), 0o400);

    let srs = keys.join("srs.params");
    chmod(&srs, 0o644);
    let mut bytes = std::fs::read(&srs).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&srs, bytes).unwrap();
    let output = cli(&["keys", "verify", "--keys-dir", s(&keys)]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout_json(&output)["failed_check"], "srs_pin");
}

#[test]
fn backup_and_restore_with_passphrase_from_file_or_stdin() {
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    let made = stdout_json(&cli(&["keygen", "--keys-dir", s(&keys)]));
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "a long enough passphrase\n").unwrap();
    let bak = dir.path().join("keys.bak");
    let output = cli(&[
        "keys",
        "backup",
        "--keys-dir",
        s(&keys),
        "--out",
        s(&bak),
        "--passphrase-file",
        s(&pass),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // Restore into a new directory, passphrase on stdin.
    let target = dir.path().join("restored");
    let output = cli_with_stdin(
        &["keys", "restore", "--in", s(&bak), "--keys-dir", s(&target)],
        "a long enough passphrase\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let restored = stdout_json(&output);
    assert_eq!(restored["host_id"], made["host_id"]);
    assert_eq!(
        stdout_json(&cli(&["keys", "verify", "--keys-dir", s(&target)]))["ok"],
        true
    );

    // Wrong passphrase: refused, nothing installed; over existing keys only with --force.
    let elsewhere = dir.path().join("elsewhere");
    let output = cli_with_stdin(
        &[
            "keys",
            "restore",
            "--in",
            s(&bak),
            "--keys-dir",
            s(&elsewhere),
        ],
        "not the passphrase\n",
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout_json(&output)["code"], "backup_authentication");
    assert!(!elsewhere.exists());
    let output = cli(&[
        "keys",
        "restore",
        "--in",
        s(&bak),
        "--keys-dir",
        s(&target),
        "--passphrase-file",
        s(&pass),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout_json(&output)["code"], "keys_exist");
    let output = cli(&[
        "keys",
        "restore",
        "--in",
        s(&bak),
        "--keys-dir",
        s(&target),
        "--passphrase-file",
        s(&pass),
        "--force",
    ]);
    assert!(output.status.success());
    assert!(stdout_json(&output)["replaced"].is_string());

    // The passphrase is never taken from argv (there is no such flag).
    let output = cli(&[
        "keys",
        "backup",
        "--keys-dir",
        s(&keys),
        "--out",
        s(&dir.path().join("x.bak")),
        "--passphrase",
        "x",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

fn wait_for(node: &Node, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = node.get("/health/ezkl");
        if check(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "{what}: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rotation_while_serving_keeps_old_proofs_verifiable() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let old_vk = node.startup["vk_id"].as_str().unwrap().to_string();
    let old_host = node.startup["host_id"].as_str().unwrap().to_string();
    let (_, accepted) = node.post("/v1/results", &result(1));
    let job1 = accepted["job_id"].as_str().unwrap().to_string();
    let proof1 = node.wait_proved(&job1, Duration::from_secs(30));

    // Traffic keeps flowing during the rotation: no request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (stop, failures, sent, base) = (
            stop.clone(),
            failures.clone(),
            sent.clone(),
            node.base.clone(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut job = 1000u64;
            while !stop.load(Ordering::SeqCst) {
                job += 1;
                let status = client
                    .post(format!("{base}/v1/results"))
                    .json(&result(job))
                    .send()
                    .map(|r| r.status().as_u16());
                sent.fetch_add(1, Ordering::SeqCst);
                if !matches!(status, Ok(202) | Ok(503)) {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // Rotate to a new SRS and a new host key, then SIGHUP the node.
    let (srs, pin) = common::ceremony_srs(dir.path());
    let keys = dir.path().join("keys");
    let output = cli(&[
        "keys",
        "rotate",
        "--keys-dir",
        s(&keys),
        "--srs",
        &srs,
        "--srs-sha256",
        &pin,
        "--new-host-key",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rotated = stdout_json(&output);
    assert_eq!(rotated["previous_vk_id"], old_vk);
    assert_eq!(rotated["vk_changed"], true);
    let new_vk = rotated["vk_id"].as_str().unwrap().to_string();
    let new_host = rotated["host_id"].as_str().unwrap().to_string();
    assert_ne!(new_host, old_host);
    assert!(common::send_signal(node.pid(), libc::SIGHUP), "SIGHUP");
    let health = wait_for(&node, "new keys picked up", |h| {
        h["vk_id"] == new_vk.as_str()
    });
    assert_eq!(health["host_id"], new_host);
    assert_eq!(health["srs_trust"], "ceremony");
    let held: Vec<&str> = health["verifying_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        held.contains(&old_vk.as_str()) && held.contains(&new_vk.as_str()),
        "{held:?}"
    );

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    traffic.join().unwrap();
    assert!(sent.load(Ordering::SeqCst) > 5);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "requests failed during the rotation"
    );

    // New work is proved with the new keys and host.
    let (_, accepted) = node.post("/v1/results", &result(2));
    let job2 = accepted["job_id"].as_str().unwrap().to_string();
    let proof2 = node.wait_proved(&job2, Duration::from_secs(30));
    assert_eq!(proof2["proof"]["vk_id"], new_vk.as_str());
    assert_eq!(proof2["public_inputs"]["host_id"], new_host.as_str());

    // The old proof still verifies (old key, old host) and settles.
    let client_result = result(1);
    let check_old = |node: &Node| {
        let (_, verdict) = node.post(
            "/v1/verify",
            &json!({ "result": client_result, "proof": proof1["proof"], "host_id": old_host }),
        );
        assert_eq!(verdict["valid"], true, "{verdict}");
    };
    check_old(&node);
    let (_, settlement) = node.post(&format!("/v1/settlements/{job1}"), &json!({}));
    assert_eq!(settlement["outcome"], "settled", "{settlement}");

    // After a restart the retired key is loaded from disk.
    node.kill9();
    let node = Node::start(dir.path(), &[]);
    assert_eq!(node.startup["vk_id"], new_vk.as_str());
    check_old(&node);
    assert_eq!(
        stdout_json(&cli(&["keys", "verify", "--keys-dir", s(&keys)]))["ok"],
        true
    );
}

/// DEPLOYMENT.md's path: ceremony keys, a wallet, then `serve --production`.
#[test]
fn production_node_starts_with_ceremony_keys_and_a_wallet() {
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    let output = common::ceremony_keygen(dir.path());
    assert_eq!(stdout_json(&output)["srs_trust"], "ceremony");
    assert_eq!(
        stdout_json(&cli(&["keys", "verify", "--keys-dir", s(&keys)]))["ok"],
        true
    );

    // Without a wallet, production refuses to start (and names it).
    let refused = common::serve_refused(dir.path(), &["--production"], &[]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.stdout.contains("wallet"), "{}", refused.stdout);

    let node = common::start_production(dir.path());
    assert_eq!(node.startup["production"], true);
    assert_eq!(node.startup["srs_trust"], "ceremony");
    let (_, health) = node.get("/health/ezkl");
    assert_eq!(health["srs_insecure"], false);
    assert_eq!(health["production"], true);
    // In production every state-changing route needs the admin token.
    let (status, refused) = node.post("/v1/results", &result(9));
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["error"]["code"], "unauthorized");
    let (status, accepted) = node.post_with_token("/v1/results", &result(9));
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job_id"].as_str().unwrap().to_string();
    node.wait_proved(&job, Duration::from_secs(30));
    let checkpoint = json!({ "job_id": job, "tokens_processed": 10 });
    let (status, refused) = node.post("/v1/checkpoints", &checkpoint);
    assert_eq!(
        (status, &refused["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, recorded) = node.post_with_token("/v1/checkpoints", &checkpoint);
    assert_eq!(status, 201, "{recorded}");
    let (status, refused) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(
        (status, &refused["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (_, settlement) = node.post_with_token(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(settlement["outcome"], "settled", "{settlement}");
    assert_eq!(settlement["tokens"], 109 - 10, "{settlement}");
    // Reading and verifying need no token.
    let (status, _) = node.get(&format!("/v1/proofs/{job}"));
    assert_eq!(status, 200);
}

/// A key directory named by a setting must hold keys: `serve` refuses to
/// start (naming the setting) instead of making a new identity there; only
/// the default `DATA_DIR/keys` is created on first start.
#[test]
fn a_named_key_directory_without_keys_is_refused_never_created() {
    let dir = DataDir::new();
    let data = dir.path().join("data");
    let typo = dir.path().join("kyes");
    let config = dir.path().join("node.toml");
    std::fs::write(&config, format!("keys_dir = {:?}\n", s(&typo))).unwrap();
    let proving_key = typo.join("proving.key");
    // (flags, environment, the setting the refusal names)
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, String);
    let cases: [Case; 5] = [
        (&["--keys-dir", s(&typo)], vec![], "--keys-dir".into()),
        (
            &[],
            vec![("FABSTIR_KEYS_DIR", s(&typo))],
            "environment variable FABSTIR_KEYS_DIR".into(),
        ),
        (
            &[],
            vec![("EZKL_PROVING_KEY_PATH", s(&proving_key))],
            "environment variable EZKL_PROVING_KEY_PATH".into(),
        ),
        (
            &["--config", s(&config)],
            vec![],
            format!("keys_dir in config file {}", config.display()),
        ),
        (
            &["--keys-dir", s(&typo), "--production"],
            vec![],
            "--keys-dir".into(),
        ),
    ];
    for (flags, env, named_by) in &cases {
        let refusal = common::serve_refused(&data, flags, env);
        assert_eq!(
            refusal.code,
            Some(2),
            "{flags:?} {env:?}: {}",
            refusal.text()
        );
        let report: Value = serde_json::from_str(refusal.stdout.trim()).unwrap();
        assert_eq!(report["code"], "keys", "{report}");
        let message = report["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "key directory {} (named by {named_by}) does not exist: create the keys with `fabstir-node keygen --keys-dir {}`",
                typo.display(),
                typo.display()
            )),
            "{message}"
        );
        assert!(
            !typo.exists(),
            "{flags:?} {env:?} created {}",
            typo.display()
        );
        assert!(!data.exists(), "a refused start touched the data directory");
    }
    // An existing directory without keys: refused, left empty.
    std::fs::create_dir(&typo).unwrap();
    let refusal = common::serve_refused(&data, &["--keys-dir", s(&typo)], &[]);
    assert_eq!(refusal.code, Some(2));
    assert!(
        refusal
            .stdout
            .contains("(named by --keys-dir) holds no keys (no keys.json)"),
        "{}",
        refusal.stdout
    );
    assert_eq!(std::fs::read_dir(&typo).unwrap().count(), 0);

    // Keys made by keygen in the named directory: the node uses them.
    let made = stdout_json(&cli(&["keygen", "--keys-dir", s(&typo)]));
    let node = Node::start(&data, &["--keys-dir", s(&typo)]);
    assert_eq!(node.startup["host_id"], made["host_id"]);
    assert!(
        !data.join("keys").exists(),
        "default keys made besides --keys-dir"
    );
    drop(node);
    // Without any key setting, the default directory is created.
    let fresh = dir.path().join("fresh");
    let node = Node::start(&fresh, &[]);
    assert!(fresh.join("keys").join("keys.json").exists());
    assert_ne!(node.startup["host_id"], made["host_id"]);
}

/// Drives a command on a pseudo-terminal (standard input and error), with
/// python3's `pty` module: answers each prompt (a line ending in ": ") with
/// the next answer, and reports the terminal's transcript, standard output,
/// exit code and whether echo is on again afterwards.
const PTY_DRIVER: &str = r#"
import json, os, pty, select, subprocess, sys, termios, time
spec = json.loads(sys.argv[1])
master, slave = pty.openpty()
proc = subprocess.Popen(spec["argv"], stdin=slave, stderr=slave, stdout=subprocess.PIPE)
answers = [a.encode() for a in spec["answers"]]
transcript = b""
answered_at = -1
deadline = time.time() + 120
timed_out = False
while True:
    ready, _, _ = select.select([master], [], [], 0.05)
    if ready:
        transcript += os.read(master, 4096)
        continue
    if proc.poll() is not None:
        break
    if time.time() > deadline:
        timed_out = True
        proc.kill()
        proc.wait()
        break
    last = transcript.split(b"\n")[-1]
    if answers and last.endswith(b": ") and answered_at != len(transcript):
        os.write(master, answers.pop(0))
        answered_at = len(transcript)
echo = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
print(json.dumps({
    "code": proc.returncode,
    "timed_out": timed_out,
    "terminal": transcript.decode(errors="replace"),
    "stdout": proc.stdout.read().decode(errors="replace"),
    "echo_after": echo,
    "unanswered": len(answers),
}))
"#;

fn on_terminal(args: &[&str], answers: &[&str]) -> Value {
    let spec = json!({
        "argv": std::iter::once(binary()).chain(args.iter().copied()).collect::<Vec<_>>(),
        "answers": answers,
    });
    let output = Command::new("python3")
        .args(["-c", PTY_DRIVER, &spec.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pty driver: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["timed_out"], false, "{report}");
    assert_eq!(report["echo_after"], true, "echo left off: {report}");
    report
}

/// On a terminal, `keys backup` prompts on standard error, reads without
/// echo and asks twice (a mismatch is refused); `keys restore` asks once;
/// Ctrl-C cancels.
#[test]
fn passphrase_on_a_terminal_is_prompted_without_echo_and_confirmed() {
    const PASS: &str = "correct horse battery staple";
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    let made = stdout_json(&cli(&["keygen", "--keys-dir", s(&keys)]));
    let bak = dir.path().join("keys.bak");
    let backup = ["keys", "backup", "--keys-dir", s(&keys), "--out", s(&bak)];

    let mismatch = on_terminal(
        &backup,
        &[&format!("{PASS}\n"), "correct horse battery stapler\n"],
    );
    assert_eq!(mismatch["code"], 2, "{mismatch}");
    let refused: Value = serde_json::from_str(mismatch["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(refused["code"], "passphrase");
    assert_eq!(
        refused["error"],
        "the two passphrases do not match; nothing was written"
    );
    assert!(!bak.exists());

    let short = on_terminal(&backup, &["short\n", "short\n"]);
    assert_eq!(short["code"], 2, "{short}");
    assert!(short["stdout"]
        .as_str()
        .unwrap()
        .contains("at least 12 characters"));
    assert!(
        !short["terminal"].as_str().unwrap().contains("Repeat"),
        "{short}"
    );

    let cancelled = on_terminal(&backup, &["correct\u{3}"]);
    assert_eq!(cancelled["code"], 2, "{cancelled}");
    assert!(cancelled["stdout"]
        .as_str()
        .unwrap()
        .contains("cancelled at the passphrase prompt"));

    let saved = on_terminal(&backup, &[&format!("{PASS}\n"), &format!("{PASS}\n")]);
    assert_eq!(saved["code"], 0, "{saved}");
    let terminal = saved["terminal"].as_str().unwrap();
    assert!(
        terminal.contains("New backup passphrase (at least 12 characters): ")
            && terminal.contains("Repeat the passphrase: "),
        "{terminal:?}"
    );
    for report in [&mismatch, &short, &cancelled, &saved] {
        let terminal = report["terminal"].as_str().unwrap();
        assert!(
            !terminal.contains("horse")
                && !terminal.contains("short\r")
                && !terminal.contains("correct"),
            "the passphrase was echoed: {terminal:?}"
        );
    }
    assert!(bak.exists());

    let target = dir.path().join("restored");
    let restore = ["keys", "restore", "--in", s(&bak), "--keys-dir", s(&target)];
    let restored = on_terminal(&restore, &[&format!("{PASS}\n"), &format!("{PASS}\n")]);
    assert_eq!(restored["code"], 0, "{restored}");
    assert_eq!(restored["unanswered"], 1, "restore asks once: {restored}");
    let terminal = restored["terminal"].as_str().unwrap();
    assert_eq!(terminal.matches("passphrase: ").count(), 1, "{terminal:?}");
    assert!(!terminal.contains("horse"), "{terminal:?}");
    let report: Value = serde_json::from_str(restored["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(report["host_id"], made["host_id"]);
}

/// DEPLOYMENT.md section 10's HTTP reload, run as written (the node's address
/// and data directory substituted for the service's): it carries the content
/// type and the admin token, and the node takes the rotated keys.
#[test]
fn deployment_reload_command_works_as_written() {
    let deployment = common::read_repo_file("docs/DEPLOYMENT.md");
    let section = &deployment[deployment
        .find("## 10. Rotating keys while serving")
        .expect("DEPLOYMENT section 10")..];
    let block = &section[section.find("```sh\n").unwrap() + 6..];
    let block = &block[..block.find("```").unwrap()];
    let start = block.find("curl ").expect("the HTTP reload command");
    let mut command = String::new();
    for line in block[start..].lines() {
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    assert!(command.contains("/v1/admin/keys/reload"), "{command}");

    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let old_host = node.startup["host_id"].as_str().unwrap().to_string();
    let keys = dir.path().join("keys");
    let output = cli(&["keys", "rotate", "--keys-dir", s(&keys), "--new-host-key"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let command = command
        .replace("http://127.0.0.1:8080", &node.base)
        .replace(
            "sudo -u fabstir cat /var/lib/fabstir/data/",
            &format!("cat {}/", s(dir.path())),
        );
    let output = std::process::Command::new("bash")
        .args(["-c", &command])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let reloaded: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(reloaded["vk_id"].is_string(), "{reloaded}");
    let (_, health) = node.get("/health/ezkl");
    assert_ne!(health["host_id"], old_host.as_str(), "{health}");
}
