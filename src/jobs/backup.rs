//! `db_backup`: a backup of the current database, with the oldest pruned.
use std::rc::Rc;

use serde_json::{Value, json};

use super::{Error, Result};
use crate::control::Session;

/// Writes a backup of the current database into the `backups/` directory beside it and keeps
/// the newest `keep`. Each database keeps its own backups: a user's never mix with (or are
/// pruned with) the default database's.
pub async fn backup(session: Rc<Session>, keep: usize) -> Result<Value> {
    let db = session.database().ok_or(Error::NoDatabase)?;
    let dir = db.backups_dir();
    let path = db.rotate_backup(&dir, keep, None).await.map_err(|source| Error::Backup { dir, source })?;
    Ok(json!({ "backup": path.display().to_string() }))
}
