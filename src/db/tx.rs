//! The write transaction handed to `db.write` closures, with nested savepoints.
//!
//! Savepoints follow rotki's rules (its `tests/db/test_savepoints.py`): they nest; rolling back
//! an inner one keeps the outer one's work; names must be active to be released or rolled back
//! to, and may not be reused while active. Inside a write, a nested "write" is a savepoint.
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::{Connection, Transaction};

use super::{Error, Result};
use crate::runtime::panic_message;

/// A write transaction (`BEGIN IMMEDIATE`). It commits when the closure returns `Ok` and
/// rolls back on `Err` or panic; the closure never commits by hand. Derefs to the
/// connection for `prepare`, `query_row` and the rest; `execute` goes through the statement
/// cache.
#[derive(Debug)]
pub struct WriteTx<'conn> {
    /// The open transaction (owned by the writer, which commits it).
    tx: &'conn Transaction<'conn>,
    /// Active savepoint names, outermost first.
    savepoints: Vec<String>,
    /// Counter for generated savepoint names.
    generated: u32,
}

impl<'conn> WriteTx<'conn> {
    pub(crate) fn new(tx: &'conn Transaction<'conn>) -> WriteTx<'conn> {
        WriteTx { tx, savepoints: Vec::new(), generated: 0 }
    }

    /// Runs one statement, like `Connection::execute`, but prepared once per connection and
    /// kept in its statement cache: the small writes a daemon repeats (a setting, a balance)
    /// skip SQL parsing after the first time, as Python's sqlite3 module does for aiosqlite.
    pub fn execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    /// Runs `f` inside a savepoint: released when it returns `Ok`, rolled back (keeping the
    /// outer transaction's work) on `Err` or panic. The error or panic is passed on.
    pub fn savepoint<R>(&mut self, f: impl FnOnce(&mut WriteTx<'conn>) -> Result<R>) -> Result<R> {
        let name = self.enter_savepoint(None)?;
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(Ok(value)) => {
                self.release_savepoint(Some(&name))?;
                Ok(value)
            }
            Ok(Err(err)) => {
                self.rollback_savepoint(Some(&name))?;
                Err(err)
            }
            Err(panic) => {
                self.rollback_savepoint(Some(&name))?;
                Err(Error::Panicked(panic_message(&panic)))
            }
        }
    }

    /// Opens a savepoint; without a name one is generated. Returns the name.
    pub fn enter_savepoint(&mut self, name: Option<&str>) -> Result<String> {
        let name = match name {
            Some(name) => valid_name(name)?.to_string(),
            None => {
                self.generated += 1;
                format!("robin_savepoint_{}", self.generated)
            }
        };
        if self.savepoints.contains(&name) {
            return Err(Error::DuplicateSavepoint(name));
        }
        self.tx.execute_batch(&format!("SAVEPOINT \"{name}\""))?;
        self.savepoints.push(name.clone());
        Ok(name)
    }

    /// Releases the named savepoint (the innermost without a name) and every one inside it.
    pub fn release_savepoint(&mut self, name: Option<&str>) -> Result<()> {
        let index = self.find(name)?;
        self.tx.execute_batch(&format!("RELEASE SAVEPOINT \"{}\"", self.savepoints[index]))?;
        self.savepoints.truncate(index);
        Ok(())
    }

    /// Undoes everything since the named savepoint (the innermost without a name) and ends it
    /// and every one inside it.
    pub fn rollback_savepoint(&mut self, name: Option<&str>) -> Result<()> {
        let index = self.find(name)?;
        let name = &self.savepoints[index];
        self.tx.execute_batch(&format!("ROLLBACK TO SAVEPOINT \"{name}\"; RELEASE SAVEPOINT \"{name}\""))?;
        self.savepoints.truncate(index);
        Ok(())
    }

    /// The active savepoints, outermost first.
    pub fn active_savepoints(&self) -> &[String] {
        &self.savepoints
    }

    fn find(&self, name: Option<&str>) -> Result<usize> {
        match name {
            None => self
                .savepoints
                .len()
                .checked_sub(1)
                .ok_or_else(|| Error::UnknownSavepoint("<innermost>".into())),
            Some(name) => self
                .savepoints
                .iter()
                .rposition(|n| n == name)
                .ok_or_else(|| Error::UnknownSavepoint(name.into())),
        }
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.tx
    }
}

/// Savepoint names are spliced into SQL, so only identifiers are allowed.
fn valid_name(name: &str) -> Result<&str> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(name) } else { Err(Error::InvalidSavepointName(name.into())) }
}
