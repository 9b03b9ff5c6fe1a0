//! Background work. Each job is a `run_once(&App)` that does one round and reports what it did,
//! plus a loop that runs it on an interval until shutdown. Tests call `run_once` directly.

use std::time::Duration;

use seva_app::App;
use tokio::sync::watch;

/// What one round of a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub done: u64,
}

pub mod sessions {
    //! Expired browser sessions are deleted, so the table holds only live ones.

    use super::Outcome;

    pub async fn run_once(app: &seva_app::App) -> Result<Outcome, seva_app::AppError> {
        Ok(Outcome {
            done: app.purge_expired_sessions().await?,
        })
    }
}

pub mod surveys {
    //! Relationship NPS: customers who ordered are asked on the default settings' interval.

    use super::Outcome;

    pub async fn run_once(app: &seva_app::App) -> Result<Outcome, seva_app::AppError> {
        Ok(Outcome {
            done: app.send_relationship_nps(200).await?,
        })
    }
}

pub mod fanout {
    //! Live updates from the other instances on the same PostgreSQL database (LISTEN/NOTIFY),
    //! applied to this one's watchers. Nothing to do on SQLite.

    use std::time::Duration;

    use seva_app::App;
    use tokio::sync::watch;

    /// Listens until `stop` turns true, reconnecting a second after a lost connection.
    pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
        loop {
            match app.store.listener().await {
                Ok(None) => return,
                Ok(Some(mut listener)) => {
                    // Whatever was announced while not listening is lost: pages reload.
                    app.resync_here();
                    loop {
                        tokio::select! {
                            payload = listener.recv() => match payload {
                                Ok(payload) => app.apply_remote(&payload),
                                Err(e) => {
                                    tracing::warn!(error = %e, "live updates from other instances interrupted");
                                    break;
                                }
                            },
                            _ = stop.changed() => return,
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for other instances' updates"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

pub mod outbox {
    //! Agents' email replies leave through the outbox: queued with the reply, sent here,
    //! retried with back-off while the SMTP server is away.

    use std::time::Duration;

    use seva_app::App;
    use tokio::sync::watch;

    use super::Outcome;

    pub async fn run_once(app: &App) -> Result<Outcome, seva_app::AppError> {
        let sent = seva_channels::email::send_due(app).await?;
        Ok(Outcome { done: sent.sent })
    }

    /// Looks for due mail every `every` until `stop` turns true.
    pub async fn run(app: App, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => if let Err(e) = run_once(&app).await {
                    // A database that is away for a while is retried on the next tick.
                    tracing::warn!(error = %e, "outbox round failed; retrying");
                },
                _ = stop.changed() => return,
            }
        }
    }
}

pub mod mailboxes {
    //! One watcher per active mailbox (IMAP IDLE, or polling), restarted when an admin changes
    //! the mailbox, stopped when it is disabled. With several instances on one PostgreSQL
    //! database, each mailbox is watched by the one instance holding its lease
    //! (`App::claim_mailbox_watch`); another takes over within a lease when it stops.

    use std::collections::HashMap;
    use std::time::Duration;

    use seva_app::App;
    use seva_domain::Timestamp;
    use seva_domain::mail::MailboxId;
    use tokio::sync::watch;
    use tokio::task::JoinHandle;

    struct Watcher {
        updated_at: Timestamp,
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    }

    /// Keeps this instance's watchers in step with the mailboxes and their leases, checking
    /// every `every` (well inside the lease).
    pub async fn run(app: App, poll: Duration, every: Duration, mut stop: watch::Receiver<bool>) {
        let me = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
        let mut watchers: HashMap<MailboxId, Watcher> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let mailboxes = match app.active_mailboxes().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list mailboxes; retrying");
                    continue;
                }
            };
            let mut ours = Vec::new();
            for mailbox in mailboxes {
                match app.claim_mailbox_watch(mailbox.id, &me).await {
                    Ok(true) => ours.push(mailbox),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(mailbox = %mailbox.id, error = %e, "cannot renew the mailbox lease");
                    }
                }
            }
            watchers.retain(|id, w| {
                let current = ours.iter().find(|m| m.id == *id);
                let keep =
                    current.is_some_and(|m| m.updated_at == w.updated_at) && !w.task.is_finished();
                if !keep {
                    let _ = w.stop.send(true);
                }
                keep
            });
            for mailbox in ours {
                watchers.entry(mailbox.id).or_insert_with(|| {
                    let (tx, rx) = watch::channel(false);
                    let task = tokio::spawn(seva_channels::email::imap::watch(
                        app.clone(),
                        mailbox.id,
                        poll,
                        rx,
                    ));
                    Watcher {
                        updated_at: mailbox.updated_at,
                        stop: tx,
                        task,
                    }
                });
            }
        }
        for (id, w) in watchers.drain() {
            let _ = w.stop.send(true);
            let _ = w.task.await;
            let _ = app.release_mailbox_watch(id, &me).await;
        }
    }
}

/// Starts every background job. They stop when `shutdown` turns true.
pub fn spawn_all(app: &App, shutdown: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let fanout = tokio::spawn(fanout::run(app.clone(), shutdown.clone()));
    let sessions_app = app.clone();
    let mut stop = shutdown.clone();
    let sessions = tokio::spawn(async move {
        let app = sessions_app;
        let mut tick = tokio::time::interval(Duration::from_mins(15));
        loop {
            tokio::select! {
                _ = tick.tick() => match sessions::run_once(&app).await {
                    Ok(outcome) if outcome.done > 0 => tracing::info!(removed = outcome.done, "expired sessions purged"),
                    Ok(_) => {}
                    // A database that is away for a while is retried on the next tick.
                    Err(e) => tracing::warn!(error = %e, "session purge failed; retrying later"),
                },
                _ = stop.changed() => break,
            }
        }
    });
    let outbox = tokio::spawn(outbox::run(
        app.clone(),
        Duration::from_secs(2),
        shutdown.clone(),
    ));
    let mailboxes = tokio::spawn(mailboxes::run(
        app.clone(),
        Duration::from_mins(1),
        Duration::from_secs(10),
        shutdown.clone(),
    ));
    let surveys_app = app.clone();
    let mut stop = shutdown.clone();
    let surveys = tokio::spawn(async move {
        let app = surveys_app;
        let mut tick = tokio::time::interval(Duration::from_mins(10));
        loop {
            tokio::select! {
                _ = tick.tick() => match surveys::run_once(&app).await {
                    Ok(outcome) if outcome.done > 0 => tracing::info!(asked = outcome.done, "relationship NPS sent"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "relationship NPS failed; retrying later"),
                },
                _ = stop.changed() => break,
            }
        }
    });
    vec![fanout, sessions, outbox, mailboxes, surveys]
}
