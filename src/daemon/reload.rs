//! SIGHUP: read the configuration again and apply what can change while running.
//!
//! Applied live: the log filter, the allowed browser origins, `ipc_allow_uids` (new clients follow
//! it, and open connections of users it no longer allows are closed: HTTP keep-alive, WebSocket
//! and control-socket clients alike) and the scheduler's `max_tasks` and `tick_secs`. Everything else (the
//! listener, the directories, the token, feature flags, the notifier's, database's and outbound
//! client's bounds) is fixed at start: a change there is logged as needing a restart, and the
//! running value stays. A file that does not parse changes nothing.
use std::rc::Rc;

use crate::config::{Config, Environment};
use crate::peers::{Policy, SharedPolicy};
use crate::server;
use crate::tasks::Scheduler;

/// The running parts a reload can reach.
#[derive(Debug)]
pub(super) struct Live {
    /// The HTTP listener's rules.
    pub(super) server: server::Handle,
    /// Its current access checks, of which a reload changes the origins.
    pub(super) access: server::Access,
    /// The control socket's policy, when the socket is on.
    pub(super) ipc_policy: Option<Rc<SharedPolicy>>,
    /// The scheduler, when the feature is on.
    pub(super) scheduler: Option<Rc<Scheduler>>,
}

/// Reads the configuration again (off the loop: it reads a file) and applies it.
pub(super) async fn reload(current: &mut Config, env: &Environment, live: &mut Live) {
    log::info!("SIGHUP: reading the configuration again");
    let (args, env) = (current.args.clone(), env.clone());
    let resolved = blocking::unblock(move || Config::resolve(&args, &env)).await;
    let new = match resolved {
        Ok(new) => new,
        Err(err) => {
            log::error!("reload: {}; keeping the running configuration", crate::error_chain(&err));
            return;
        }
    };
    let mut applied = Vec::new();
    if new.log_level.value != current.log_level.value {
        match crate::logging::set_filter(&new.log_level.value) {
            Ok(()) => applied.push(format!("log_level = {:?}", new.log_level.value)),
            Err(err) => log::error!("reload: {err}"),
        }
    }
    if new.ws_origins.value != current.ws_origins.value {
        live.access.allowed_origins = new.ws_origins.value.clone();
        live.server.set_access(live.access.clone());
        applied.push(format!("ws_origins = {:?}", new.ws_origins.value));
    }
    if new.ipc_allow_uids != current.ipc_allow_uids {
        live.server.set_policy(Policy::new(&new.ipc_allow_uids));
        if let Some(policy) = &live.ipc_policy {
            policy.set(Policy::new(&new.ipc_allow_uids));
        }
        applied.push(format!("ipc_allow_uids = {:?}", new.ipc_allow_uids));
    }
    if new.scheduler.max_tasks != current.scheduler.max_tasks || new.scheduler.tick != current.scheduler.tick
    {
        if let Some(scheduler) = &live.scheduler {
            scheduler.set_limits(new.scheduler.max_tasks, new.scheduler.tick);
        }
        applied.push(format!(
            "[scheduler] max_tasks = {}, tick = {:?}",
            new.scheduler.max_tasks, new.scheduler.tick
        ));
    }
    let fixed = needs_restart(current, &new);
    for key in &fixed {
        log::warn!("reload: {key} changed; restart robind to apply it (the running value stays)");
    }
    log::info!("reloaded the configuration: {} applied, {} need a restart", describe(&applied), fixed.len());
    current.log_level = new.log_level;
    current.ws_origins = new.ws_origins;
    current.ipc_allow_uids = new.ipc_allow_uids;
    current.scheduler.max_tasks = new.scheduler.max_tasks;
    current.scheduler.tick = new.scheduler.tick;
}

/// The settings that changed but only take effect at start.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let (od, nd) = (&old.database, &new.database);
    let database_changed =
        od.readers != nd.readers || od.synchronous != nd.synchronous || od.write_timeout != nd.write_timeout;
    let token_changed = old.api_token_file.as_ref().map(|s| &s.value)
        != new.api_token_file.as_ref().map(|s| &s.value)
        || old.generate_api_token.value != new.generate_api_token.value;
    let features_changed =
        old.features.iter().zip(new.features.iter()).any(|((_, a), (_, b))| a.value != b.value);
    [
        ("listen", old.listen.value != new.listen.value),
        ("data_dir", old.data_dir.value != new.data_dir.value),
        ("runtime_dir", old.runtime_dir.value != new.runtime_dir.value),
        ("the API token", token_changed),
        ("[features]", features_changed),
        ("[websocket]", old.notifier != new.notifier),
        ("[database]", database_changed || old.backups != new.backups),
        ("[http]", old.outbound != new.outbound),
        ("[scheduler] start_on", old.scheduler.start_on != new.scheduler.start_on),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

fn describe(applied: &[String]) -> String {
    if applied.is_empty() { "nothing".into() } else { applied.join(", ") }
}
