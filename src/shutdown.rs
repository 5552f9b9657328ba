//! The one shutdown signal of every long-running subcommand.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind};

/// Resolves when the process is asked to stop: SIGTERM (what Kubernetes and
/// `kill` send) or SIGINT (Ctrl-C), whichever comes first.
///
/// The handlers are installed when this is called, not when the future is
/// first polled, so a signal sent right after (say, once a ready line is
/// printed) is not lost. A handler that cannot be installed is logged and left
/// out; the other signal still works. Must be called inside a Tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        let name = tokio::select! {
            () = received(interrupt) => "SIGINT",
            () = received(terminate) => "SIGTERM",
        };
        tracing::info!(signal = name, "asked to stop");
    }
}

fn listen(kind: SignalKind, name: &'static str) -> Option<Signal> {
    tokio::signal::unix::signal(kind)
        .map_err(|e| tracing::warn!(error = %e, signal = name, "cannot listen for this signal"))
        .ok()
}

/// Resolves on the next delivery; never, when there is no handler.
async fn received(signal: Option<Signal>) {
    if let Some(mut signal) = signal
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    #[tokio::test]
    async fn each_signal_stops_even_when_sent_before_the_first_poll() {
        for name in ["INT", "TERM"] {
            let stop = super::signal();
            let sent = Command::new("kill")
                .args([&format!("-{name}"), &std::process::id().to_string()])
                .status()
                .expect("run kill");
            assert!(sent.success());
            tokio::time::timeout(Duration::from_secs(10), stop)
                .await
                .unwrap_or_else(|_| panic!("SIG{name} did not resolve the shutdown signal"));
        }
    }
}
