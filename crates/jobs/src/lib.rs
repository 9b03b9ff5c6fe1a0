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

/// Starts every background job. They stop when `shutdown` turns true.
pub fn spawn_all(app: &App, shutdown: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let fanout = tokio::spawn(fanout::run(app.clone(), shutdown.clone()));
    let app = app.clone();
    let mut stop = shutdown.clone();
    let sessions = tokio::spawn(async move {
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
    vec![fanout, sessions]
}
