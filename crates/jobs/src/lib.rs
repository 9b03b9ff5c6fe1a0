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

/// Starts every background job. They stop when `shutdown` turns true.
pub fn spawn_all(app: &App, shutdown: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let app = app.clone();
    let mut stop = shutdown.clone();
    vec![tokio::spawn(async move {
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
    })]
}
