//! The soak run's invariants, checked on the node's database (opened
//! read-only after the node stopped) against what the API acknowledged.
//!
//! The checks read the tables of `store/*.rs` with plain SQL and never rely
//! on the schema's own constraints (a `UNIQUE` the schema declares is checked
//! again with `GROUP BY`), so that a database written by a broken node, or
//! one whose constraints were lost, still fails them.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// Examples kept per invariant (the count covers them all).
const EXAMPLES: usize = 5;

/// A checkpoint the API acknowledged (201 or 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointAck {
    pub id: i64,
    pub tokens_processed: u64,
    pub tokens_claimed: u64,
    pub status: String,
}

/// A settlement the API acknowledged (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementAck {
    pub settlement_id: String,
    pub outcome: String,
    pub tokens: u64,
    pub checkpoint_tokens: u64,
}

/// A job the API accepted (202), and what the soak run saw of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckedJob {
    pub tokens_used: u64,
    /// `proved` or `failed` once the run saw it final.
    pub state: Option<String>,
    pub checkpoints: Vec<CheckpointAck>,
    pub settlement: Option<SettlementAck>,
}

/// A job id as the database stores it: `0x` and 64 lower-case hex digits.
pub fn db_job_id(job: u64) -> String {
    format!("0x{job:064x}")
}

/// One invariant's verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verdict {
    pub pass: bool,
    /// Rows or jobs examined.
    pub checked: u64,
    pub violations: u64,
    /// The first few violations, for people.
    pub examples: Vec<String>,
}

/// Collects a verdict's violations.
#[derive(Debug, Default)]
pub struct Tally {
    checked: u64,
    violations: u64,
    examples: Vec<String>,
}

impl Tally {
    /// Counts one examined item.
    pub fn checked(&mut self, n: u64) {
        self.checked += n;
    }

    /// Records a violation.
    pub fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(what);
        }
    }

    /// The verdict.
    pub fn verdict(self) -> Verdict {
        Verdict {
            pass: self.violations == 0,
            checked: self.checked,
            violations: self.violations,
            examples: self.examples,
        }
    }
}

/// Runs `sql` (rows: text description) and records each row as a violation.
fn violations_of(conn: &Connection, tally: &mut Tally, sql: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    for row in rows {
        tally.violation(row?);
    }
    Ok(())
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(sql, [], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

/// Every invariant, by name (the report's `invariants` object).
pub fn check_database(
    conn: &Connection,
    acked: &BTreeMap<u64, AckedJob>,
) -> rusqlite::Result<BTreeMap<&'static str, Verdict>> {
    let mut verdicts = BTreeMap::new();
    verdicts.insert("no_lost_jobs", no_lost_jobs(conn, acked)?);
    verdicts.insert("tokens_within_used", tokens_within_used(conn)?);
    verdicts.insert(
        "settlements_pay_the_remainder",
        settlements_pay_the_remainder(conn)?,
    );
    verdicts.insert(
        "no_checkpoint_recorded_twice",
        no_checkpoint_recorded_twice(conn, acked)?,
    );
    verdicts.insert(
        "no_settlement_recorded_twice",
        no_settlement_recorded_twice(conn, acked)?,
    );
    Ok(verdicts)
}

/// Every accepted job exists and is final: `proved` with a stored proof, or
/// `failed` with a recorded reason; a job the run saw final is still in the
/// state it saw.
fn no_lost_jobs(conn: &Connection, acked: &BTreeMap<u64, AckedJob>) -> rusqlite::Result<Verdict> {
    let mut tally = Tally::default();
    let mut stmt = conn.prepare(
        "SELECT r.state, r.failure, (SELECT COUNT(*) FROM proofs p WHERE p.job_id = r.job_id)
         FROM results r WHERE r.job_id = ?1",
    )?;
    for (job, seen) in acked {
        tally.checked(1);
        let key = db_job_id(*job);
        let row = stmt
            .query_row(params![key], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let Some((state, failure, proofs)) = row else {
            tally.violation(format!("job {job} was accepted (202) but is not stored"));
            continue;
        };
        match state.as_str() {
            "proved" if proofs == 0 => {
                tally.violation(format!("job {job} is proved but has no stored proof"))
            }
            "failed" if failure.as_deref().is_none_or(|f| f.trim().is_empty()) => {
                tally.violation(format!("job {job} failed without a recorded reason"))
            }
            "proved" | "failed" => {}
            other => tally.violation(format!("job {job} is still {other} at the end")),
        }
        if let Some(seen) = &seen.state {
            if *seen != state {
                tally.violation(format!(
                    "job {job} was {seen} through the API and is {state} in the database"
                ));
            }
        }
    }
    Ok(tally.verdict())
}

/// For every job: tokens claimed by checkpoints that were not rejected plus
/// tokens paid by its settlement are at most `tokens_used`; no claim or
/// payment is negative.
fn tokens_within_used(conn: &Connection) -> rusqlite::Result<Verdict> {
    let mut tally = Tally::default();
    tally.checked(count(
        conn,
        "SELECT COUNT(*) FROM (SELECT job_id FROM checkpoints UNION SELECT job_id FROM settlements)",
    )?);
    violations_of(
        conn,
        &mut tally,
        "WITH claims AS (
             SELECT job_id, SUM(COALESCE(tokens_claimed, tokens_processed)) AS claimed
             FROM checkpoints WHERE status != 'rejected' GROUP BY job_id),
         paid AS (SELECT job_id, SUM(tokens) AS paid FROM settlements GROUP BY job_id),
         jobs AS (SELECT job_id FROM claims UNION SELECT job_id FROM paid)
         SELECT 'job ' || jobs.job_id || ': checkpoints claim ' || COALESCE(claims.claimed, 0)
                || ' and the settlement pays ' || COALESCE(paid.paid, 0)
                || ', above tokens_used ' || COALESCE(r.tokens_used, 'none (no result stored)')
         FROM jobs
         LEFT JOIN results r ON r.job_id = jobs.job_id
         LEFT JOIN claims ON claims.job_id = jobs.job_id
         LEFT JOIN paid ON paid.job_id = jobs.job_id
         WHERE COALESCE(claims.claimed, 0) + COALESCE(paid.paid, 0) > COALESCE(r.tokens_used, 0)",
    )?;
    violations_of(
        conn,
        &mut tally,
        "SELECT 'checkpoint ' || id || ' of job ' || job_id || ' claims a negative count'
         FROM checkpoints WHERE COALESCE(tokens_claimed, tokens_processed) < 0
         UNION ALL
         SELECT 'settlement ' || settlement_id || ' of job ' || job_id || ' pays a negative count'
         FROM settlements WHERE tokens < 0 OR checkpoint_tokens < 0",
    )?;
    Ok(tally.verdict())
}

/// A `settled` settlement pays the result's `tokens_used` minus what the
/// job's checkpoints had claimed; a `rejected` one pays nothing.
fn settlements_pay_the_remainder(conn: &Connection) -> rusqlite::Result<Verdict> {
    let mut tally = Tally::default();
    tally.checked(count(conn, "SELECT COUNT(*) FROM settlements")?);
    violations_of(
        conn,
        &mut tally,
        "SELECT 'settlement ' || s.settlement_id || ' of job ' || s.job_id || ' (' || s.outcome
                || ') pays ' || s.tokens || ' after checkpoints claimed ' || s.checkpoint_tokens
                || ' of tokens_used ' || COALESCE(r.tokens_used, 'none (no result stored)')
         FROM settlements s LEFT JOIN results r ON r.job_id = s.job_id
         WHERE (s.outcome = 'settled' AND (r.tokens_used IS NULL
                    OR s.tokens + s.checkpoint_tokens != r.tokens_used))
            OR (s.outcome = 'rejected' AND s.tokens != 0)
            OR s.outcome NOT IN ('settled', 'rejected')",
    )?;
    Ok(tally.verdict())
}

/// One checkpoint per (job, `tokens_processed`); each `proofHash` claimed
/// once; each checkpoint at most once in the ledger, with the count it
/// claims; every checkpoint the API acknowledged is stored as acknowledged.
fn no_checkpoint_recorded_twice(
    conn: &Connection,
    acked: &BTreeMap<u64, AckedJob>,
) -> rusqlite::Result<Verdict> {
    let mut tally = Tally::default();
    tally.checked(count(conn, "SELECT COUNT(*) FROM checkpoints")?);
    violations_of(
        conn,
        &mut tally,
        "SELECT 'job ' || job_id || ' has ' || COUNT(*) || ' checkpoints at tokens_processed '
                || tokens_processed
         FROM checkpoints GROUP BY job_id, tokens_processed HAVING COUNT(*) > 1
         UNION ALL
         SELECT 'proofHash ' || proof_hash || ' is claimed by ' || COUNT(*) || ' checkpoints'
         FROM checkpoints WHERE status != 'rejected' GROUP BY proof_hash HAVING COUNT(*) > 1
         UNION ALL
         SELECT 'checkpoint ' || checkpoint_id || ' is in the ledger ' || COUNT(*) || ' times'
         FROM ledger GROUP BY checkpoint_id HAVING COUNT(*) > 1
         UNION ALL
         SELECT 'proofHash ' || proof_hash || ' is in the ledger ' || COUNT(*) || ' times'
         FROM ledger GROUP BY proof_hash HAVING COUNT(*) > 1
         UNION ALL
         SELECT 'ledger entry ' || l.id || ' (checkpoint ' || l.checkpoint_id || ') credits '
                || l.tokens_claimed || ', the checkpoint '
                || COALESCE(c.status || ' claiming ' || COALESCE(c.tokens_claimed, c.tokens_processed),
                            'does not exist')
         FROM ledger l LEFT JOIN checkpoints c ON c.id = l.checkpoint_id
         WHERE c.id IS NULL OR c.status = 'rejected'
            OR l.tokens_claimed != COALESCE(c.tokens_claimed, c.tokens_processed)",
    )?;
    let mut stmt = conn.prepare(
        "SELECT id, COALESCE(tokens_claimed, tokens_processed), status FROM checkpoints
         WHERE job_id = ?1 AND tokens_processed = ?2",
    )?;
    for (job, seen) in acked {
        for ack in &seen.checkpoints {
            let key = db_job_id(*job);
            let tokens = i64::try_from(ack.tokens_processed).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![key, tokens], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            match rows.as_slice() {
                [] => tally.violation(format!(
                    "checkpoint {} of job {job} at {} tokens was acknowledged but is not stored",
                    ack.id, ack.tokens_processed
                )),
                [(id, claimed, status)] => {
                    if *id != ack.id || *claimed != ack.tokens_claimed as i64 {
                        tally.violation(format!(
                            "checkpoint of job {job} at {} tokens: acknowledged as id {} claiming {}, stored as id {id} claiming {claimed}",
                            ack.tokens_processed, ack.id, ack.tokens_claimed
                        ));
                    }
                    // A checkpoint acknowledged as accepted by the chain stays so.
                    if ack.status == "submitted" && status != "submitted" {
                        tally.violation(format!(
                            "checkpoint {id} of job {job} was acknowledged submitted and is stored {status}"
                        ));
                    }
                }
                // Several rows: already reported by the GROUP BY above.
                _ => {}
            }
        }
    }
    Ok(tally.verdict())
}

/// One settlement per job and per settlement id; every settlement the API
/// acknowledged is stored as acknowledged (same id, outcome and payment).
fn no_settlement_recorded_twice(
    conn: &Connection,
    acked: &BTreeMap<u64, AckedJob>,
) -> rusqlite::Result<Verdict> {
    let mut tally = Tally::default();
    tally.checked(count(conn, "SELECT COUNT(*) FROM settlements")?);
    violations_of(
        conn,
        &mut tally,
        "SELECT 'job ' || job_id || ' has ' || COUNT(*) || ' settlements'
         FROM settlements GROUP BY job_id HAVING COUNT(*) > 1
         UNION ALL
         SELECT 'settlement id ' || settlement_id || ' is recorded ' || COUNT(*) || ' times'
         FROM settlements GROUP BY settlement_id HAVING COUNT(*) > 1",
    )?;
    let mut stmt =
        conn.prepare("SELECT settlement_id, outcome, tokens FROM settlements WHERE job_id = ?1")?;
    for (job, seen) in acked {
        let Some(ack) = &seen.settlement else {
            continue;
        };
        let rows = stmt
            .query_map(params![db_job_id(*job)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        match rows.as_slice() {
            [] => tally.violation(format!(
                "settlement {} of job {job} was acknowledged but is not stored",
                ack.settlement_id
            )),
            [(id, outcome, tokens)]
                if *id != ack.settlement_id
                    || *outcome != ack.outcome
                    || *tokens != ack.tokens as i64 =>
            {
                tally.violation(format!(
                    "job {job}: settlement acknowledged as {} ({}, {} tokens), stored as {id} ({outcome}, {tokens} tokens)",
                    ack.settlement_id, ack.outcome, ack.tokens
                ))
            }
            // As acknowledged; or several rows, reported by the GROUP BY above.
            _ => {}
        }
    }
    Ok(tally.verdict())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with the node's own schema (migrations included).
    fn node_database(dir: &tempfile::TempDir) -> Connection {
        let path = dir.path().join("node.db");
        drop(crate::store::Store::open(&path).expect("node database"));
        Connection::open(&path).expect("open")
    }

    /// The tables the checks read, without any of the schema's constraints:
    /// a database in which a broken node could record things twice.
    fn unconstrained_database() -> Connection {
        let conn = Connection::open_in_memory().expect("memory database");
        conn.execute_batch(
            "CREATE TABLE results (job_id TEXT, tokens_used INTEGER, state TEXT, failure TEXT);
             CREATE TABLE proofs (job_id TEXT);
             CREATE TABLE checkpoints (id INTEGER, job_id TEXT, tokens_processed INTEGER,
                 tokens_claimed INTEGER, proof_hash TEXT, status TEXT);
             CREATE TABLE ledger (id INTEGER, checkpoint_id INTEGER, job_id TEXT,
                 proof_hash TEXT, tokens_claimed INTEGER);
             CREATE TABLE settlements (job_id TEXT, settlement_id TEXT, outcome TEXT,
                 tokens INTEGER, checkpoint_tokens INTEGER);",
        )
        .expect("schema");
        conn
    }

    fn add_result(
        conn: &Connection,
        job: u64,
        tokens_used: i64,
        state: &str,
        failure: Option<&str>,
    ) {
        let key = db_job_id(job);
        conn.execute(
            "INSERT INTO results (job_id, chain_id, marketplace, model_name, prompt, response,
                 tokens_used, host_id, content_hash, state, failure, created_at, updated_at)
             VALUES (?1, 1, '0x00', 'm', 'p', 'r', ?2, '0x01', '0x02', ?3, ?4, 0, 0)",
            params![key, tokens_used, state, failure],
        )
        .expect("result");
        if state == "proved" {
            conn.execute(
                "INSERT INTO proofs (job_id, envelope, mock, vk_id, commitment, proof_sha256,
                     model_hash, input_hash, output_hash, prove_ms, created_at)
                 VALUES (?1, x'00', 0, 'vk', 'c', ?2, 'm', 'i', 'o', 1.0, 0)",
                params![key, format!("sha-{job}")],
            )
            .expect("proof");
        }
    }

    fn add_checkpoint(
        conn: &Connection,
        job: u64,
        processed: i64,
        claimed: i64,
        status: &str,
    ) -> i64 {
        conn.execute(
            "INSERT INTO checkpoints (job_id, tokens_processed, tokens_claimed, commitment,
                 proof_hash, proof_cid, payload, status, created_at)
             VALUES (?1, ?2, ?3, 'c', ?4, 'cid', '{}', ?5, 0)",
            params![
                db_job_id(job),
                processed,
                claimed,
                format!("hash-{job}-{processed}"),
                status
            ],
        )
        .expect("checkpoint");
        let id = conn.last_insert_rowid();
        if status == "submitted" {
            conn.execute(
                "INSERT INTO ledger (checkpoint_id, job_id, proof_hash, tokens_claimed, calldata, created_at)
                 VALUES (?1, ?2, ?3, ?4, '0x', 0)",
                params![id, db_job_id(job), format!("hash-{job}-{processed}"), claimed],
            )
            .expect("ledger");
        }
        id
    }

    fn add_settlement(
        conn: &Connection,
        job: u64,
        outcome: &str,
        tokens: i64,
        checkpoint_tokens: i64,
    ) {
        conn.execute(
            "INSERT INTO settlements (job_id, settlement_id, outcome, reason, tokens, checkpoint_tokens,
                 proof_sha256, created_at)
             VALUES (?1, ?2, ?3, NULL, ?4, ?5, NULL, 0)",
            params![db_job_id(job), format!("stl_{job}"), outcome, tokens, checkpoint_tokens],
        )
        .expect("settlement");
    }

    /// Jobs 1 (two checkpoints, settled), 2 (failed, rejected), 3 (proved,
    /// one checkpoint, not settled), as the API acknowledged them.
    fn consistent(conn: &Connection) -> BTreeMap<u64, AckedJob> {
        add_result(conn, 1, 256, "proved", None);
        let c1 = add_checkpoint(conn, 1, 64, 64, "submitted");
        let c2 = add_checkpoint(conn, 1, 128, 64, "submitted");
        add_settlement(conn, 1, "settled", 128, 128);
        add_result(
            conn,
            2,
            100,
            "failed",
            Some("timeout: proving took longer than 5000 ms"),
        );
        add_settlement(conn, 2, "rejected", 0, 0);
        add_result(conn, 3, 50, "proved", None);
        let c3 = add_checkpoint(conn, 3, 49, 49, "submitted");
        let ack = |id, processed, claimed| CheckpointAck {
            id,
            tokens_processed: processed,
            tokens_claimed: claimed,
            status: "submitted".into(),
        };
        BTreeMap::from([
            (
                1,
                AckedJob {
                    tokens_used: 256,
                    state: Some("proved".into()),
                    checkpoints: vec![ack(c1, 64, 64), ack(c2, 128, 64)],
                    settlement: Some(SettlementAck {
                        settlement_id: "stl_1".into(),
                        outcome: "settled".into(),
                        tokens: 128,
                        checkpoint_tokens: 128,
                    }),
                },
            ),
            (
                2,
                AckedJob {
                    tokens_used: 100,
                    state: Some("failed".into()),
                    checkpoints: vec![],
                    settlement: Some(SettlementAck {
                        settlement_id: "stl_2".into(),
                        outcome: "rejected".into(),
                        tokens: 0,
                        checkpoint_tokens: 0,
                    }),
                },
            ),
            (
                3,
                AckedJob {
                    tokens_used: 50,
                    state: Some("proved".into()),
                    checkpoints: vec![ack(c3, 49, 49)],
                    settlement: None,
                },
            ),
        ])
    }

    fn failing(verdicts: &BTreeMap<&'static str, Verdict>) -> Vec<&'static str> {
        verdicts
            .iter()
            .filter(|(_, v)| !v.pass)
            .map(|(name, _)| *name)
            .collect()
    }

    #[test]
    fn a_consistent_database_passes_every_invariant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let acked = consistent(&conn);
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), Vec::<&str>::new(), "{verdicts:#?}");
        assert_eq!(verdicts["no_lost_jobs"].checked, 3);
        assert_eq!(verdicts["no_checkpoint_recorded_twice"].checked, 3);
        assert_eq!(verdicts["no_settlement_recorded_twice"].checked, 2);
    }

    #[test]
    fn an_accepted_job_that_is_missing_or_unfinished_is_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let mut acked = consistent(&conn);
        acked.insert(4, AckedJob::default()); // never stored
        add_result(&conn, 5, 10, "queued", None);
        acked.insert(5, AckedJob::default());
        add_result(&conn, 6, 10, "failed", None); // no reason
        acked.insert(6, AckedJob::default());
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), vec!["no_lost_jobs"]);
        let lost = &verdicts["no_lost_jobs"];
        assert_eq!(lost.violations, 3, "{lost:#?}");
        assert!(lost.examples[0].contains("job 4 was accepted"), "{lost:#?}");
        assert!(lost.examples[1].contains("still queued"), "{lost:#?}");
        assert!(
            lost.examples[2].contains("without a recorded reason"),
            "{lost:#?}"
        );
    }

    #[test]
    fn a_job_that_changed_state_after_the_api_showed_it_final_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let mut acked = consistent(&conn);
        acked.get_mut(&3).expect("job 3").state = Some("failed".into());
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), vec!["no_lost_jobs"]);
    }

    #[test]
    fn paying_more_than_tokens_used_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let acked = consistent(&conn);
        // Job 3 (tokens_used 50, 49 claimed by a checkpoint) settles for 50 as if nothing was claimed.
        add_settlement(&conn, 3, "settled", 50, 0);
        let verdicts = check_database(&conn, &acked).expect("checks run");
        // The settlement's own record adds up (50 + 0 claimed = 50): only the
        // money invariant, which counts the checkpoint too, catches it.
        assert_eq!(failing(&verdicts), vec!["tokens_within_used"]);
        let over = &verdicts["tokens_within_used"];
        assert_eq!(over.violations, 1, "{over:#?}");
        assert!(
            over.examples[0].contains("claim 49 and the settlement pays 50, above tokens_used 50"),
            "{over:#?}"
        );
    }

    #[test]
    fn a_settlement_that_does_not_add_up_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let acked = consistent(&conn);
        // Job 3 (tokens_used 50, 49 claimed) is paid nothing although settled:
        // within tokens_used, but not what its record says.
        add_settlement(&conn, 3, "settled", 0, 49);
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), vec!["settlements_pay_the_remainder"]);
    }

    #[test]
    fn checkpoints_claiming_more_than_tokens_used_fail_even_unsettled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let acked = consistent(&conn);
        add_checkpoint(&conn, 3, 60, 11, "pending"); // 49 + 11 > 50
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), vec!["tokens_within_used"]);
    }

    #[test]
    fn a_rejected_checkpoint_claims_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let acked = consistent(&conn);
        add_checkpoint(&conn, 3, 50, 1, "rejected");
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), Vec::<&str>::new(), "{verdicts:#?}");
    }

    #[test]
    fn a_checkpoint_or_settlement_recorded_twice_fails() {
        let conn = unconstrained_database();
        conn.execute_batch(
            "INSERT INTO results VALUES ('0x01', 256, 'proved', NULL);
             INSERT INTO proofs VALUES ('0x01');
             INSERT INTO checkpoints VALUES (1, '0x01', 64, 64, 'h1', 'submitted');
             INSERT INTO checkpoints VALUES (2, '0x01', 64, 64, 'h2', 'submitted');
             INSERT INTO checkpoints VALUES (3, '0x01', 96, 32, 'h1', 'submitted');
             INSERT INTO ledger VALUES (1, 1, '0x01', 'h1', 64);
             INSERT INTO ledger VALUES (2, 1, '0x01', 'h1x', 64);
             INSERT INTO settlements VALUES ('0x01', 'stl_a', 'settled', 0, 0);
             INSERT INTO settlements VALUES ('0x01', 'stl_b', 'settled', 0, 0);",
        )
        .expect("rows");
        let verdicts = check_database(&conn, &BTreeMap::new()).expect("checks run");
        let twice = &verdicts["no_checkpoint_recorded_twice"];
        assert!(!twice.pass);
        // (job, 64) twice, proofHash h1 twice, checkpoint 1 twice in the ledger.
        assert_eq!(twice.violations, 3, "{twice:#?}");
        let settled = &verdicts["no_settlement_recorded_twice"];
        assert!(!settled.pass);
        assert_eq!(settled.violations, 1, "{settled:#?}");
        assert!(
            settled.examples[0].contains("has 2 settlements"),
            "{settled:#?}"
        );
    }

    #[test]
    fn an_acknowledged_write_that_is_gone_or_different_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let mut acked = consistent(&conn);
        let job1 = acked.get_mut(&1).expect("job 1");
        job1.checkpoints.push(CheckpointAck {
            id: 99,
            tokens_processed: 200,
            tokens_claimed: 72,
            status: "submitted".into(),
        });
        job1.settlement.as_mut().expect("settled").settlement_id = "stl_other".into();
        acked.get_mut(&3).expect("job 3").settlement = Some(SettlementAck {
            settlement_id: "stl_3".into(),
            outcome: "settled".into(),
            tokens: 1,
            checkpoint_tokens: 49,
        });
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(
            failing(&verdicts),
            vec![
                "no_checkpoint_recorded_twice",
                "no_settlement_recorded_twice"
            ]
        );
        assert_eq!(verdicts["no_settlement_recorded_twice"].violations, 2);
        assert!(verdicts["no_checkpoint_recorded_twice"].examples[0]
            .contains("acknowledged but is not stored"));
    }

    #[test]
    fn a_ledger_credit_for_a_rejected_checkpoint_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = node_database(&dir);
        let acked = consistent(&conn);
        let id = add_checkpoint(&conn, 3, 50, 1, "rejected");
        conn.execute(
            "INSERT INTO ledger (checkpoint_id, job_id, proof_hash, tokens_claimed, calldata, created_at)
             VALUES (?1, ?2, 'other-hash', 1, '0x', 0)",
            params![id, db_job_id(3)],
        )
        .expect("ledger");
        let verdicts = check_database(&conn, &acked).expect("checks run");
        assert_eq!(failing(&verdicts), vec!["no_checkpoint_recorded_twice"]);
    }
}
