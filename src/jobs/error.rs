//! The jobs' error: why a price or balance query, or a backup, failed.
use std::path::PathBuf;

/// Why a job failed. Each message names what to fix or whom to blame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No database is open (the daemon is starting or stopping).
    #[error("no database is open")]
    NoDatabase,
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] crate::db::Error),
    /// A request to the price API or the node failed.
    #[error(transparent)]
    Http(#[from] crate::outbound::Error),
    /// No node is configured.
    #[error("no Ethereum RPC endpoint is set (settings.set rpc_url)")]
    NoRpcUrl,
    /// The node answered, but not with what was asked.
    #[error("{url} {problem}")]
    Rpc {
        /// The node's URL.
        url: String,
        /// What was wrong with its answer.
        problem: String,
    },
    /// A token's `balanceOf` call failed or returned something that is not a balance.
    #[error("could not read the balance of {token} for {account}: {why}")]
    TokenCall {
        /// The token's identifier.
        token: String,
        /// The account asked about.
        account: String,
        /// What went wrong.
        why: String,
    },
    /// A balance or value does not fit robin's exact arithmetic.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// A backup could not be written.
    #[error("backup into {} failed", .dir.display())]
    Backup {
        /// The backup directory.
        dir: PathBuf,
        /// What the database reported.
        #[source]
        source: crate::db::Error,
    },
}

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
