//! The schema version and its migrations, run at start-up: each table's file
//! holds its own DDL; this file orders them. SQLite's `user_version` records
//! the version a database is at.

use rusqlite::{Connection, TransactionBehavior};

use super::{batches, checkpoints, ledger, outbox, proofs, results, settlements, StoreError};

/// The schema version this node writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Every migration, in order: the version it produces and its statements.
///
/// Version 1 is the tables as the first node wrote them; databases from
/// before versioning have exactly these tables and `user_version` 0, and
/// every statement is `IF NOT EXISTS`, so applying it to them changes
/// nothing. Version 2 records the tokens each checkpoint claims and what a
/// settlement found already claimed. Version 3 adds the EVM chain client's
/// outbox and wallet nonces. Version 4 keeps the prompt's and response's
/// hashes when retention deletes their text, and indexes proofs by digest.
/// Version 5 adds batch transactions and the outbox entries' place in one.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            results::SCHEMA_V1,
            proofs::SCHEMA_V1,
            checkpoints::SCHEMA_V1,
            ledger::SCHEMA_V1,
            settlements::SCHEMA_V1,
        ],
    ),
    (2, &[checkpoints::MIGRATE_V2, settlements::MIGRATE_V2]),
    (3, &[outbox::SCHEMA_V3]),
    (4, &[results::MIGRATE_V4, proofs::MIGRATE_V4]),
    (5, &[batches::SCHEMA_V5]),
];

/// The database's schema version.
pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the database to [`SCHEMA_VERSION`], one transaction per version;
/// refuses a database written by a newer node.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        for sql in *statements {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        if found > 0 || *version > 1 {
            tracing::info!(version, "database schema migrated");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order_and_end_at_the_version() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    }
}
