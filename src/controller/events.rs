//! Publishes the plan's notes as events.k8s.io Events. Every note is a
//! transition, so each becomes one Event; unlike kube's `Recorder`, nothing
//! is cached for series (a cache that held every event of the last minutes,
//! and swept itself on every publish).
//!
//! A pass hands its Events to a queue and goes on: they are created by a
//! task of their own, a few at a time, so a pass's turn ends with its status
//! write, not two requests later (in a burst, those turns are what the next
//! new objects wait for). The Event is built, and timed, when the pass hands
//! it over; a full queue makes the pass wait, so nothing is dropped but on
//! shutdown.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::{Semaphore, mpsc};

use super::gate::ApiGate;
use crate::plan::Note;

/// The most of a note an Event holds (the API server's limit is 1 kB).
const NOTE_LIMIT: usize = 1024;
/// Events waiting to be created; a pass waits when this many are.
const QUEUE: usize = 1024;
/// Events being created at once.
const IN_FLIGHT: usize = 16;

pub struct Publisher {
    queue: mpsc::Sender<Event>,
    /// `reportingController`: the field manager's name.
    controller: String,
    /// `reportingInstance`: this replica.
    instance: String,
}

impl Publisher {
    /// A publisher, and the task that creates its Events (it ends when the
    /// publisher is dropped and the queue is empty).
    pub fn spawn(
        client: Client,
        gate: Arc<ApiGate>,
        controller: &str,
        instance: &str,
    ) -> Publisher {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(create_all(client, gate, waiting));
        Publisher {
            queue,
            controller: controller.into(),
            instance: instance.into(),
        }
    }

    /// Queues the Event for `note` about `regarding`.
    pub async fn publish(&self, note: &Note, regarding: &ObjectReference) {
        let event = self.event(note, regarding, Timestamp::now());
        if self.queue.send(event).await.is_err() {
            tracing::debug!(reason = %note.reason, "event not published: shutting down");
        }
    }

    fn event(&self, note: &Note, regarding: &ObjectReference, now: Timestamp) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                ..ObjectMeta::default()
            },
            action: Some(note.action.into()),
            reason: Some(note.reason.as_str().into()),
            note: Some(truncate(&note.message, NOTE_LIMIT)),
            type_: Some(if note.warning { "Warning" } else { "Normal" }.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// Creates the queued Events, [`IN_FLIGHT`] at a time, each after the
/// passes' first requests ([`ApiGate`]); one that fails is logged and left
/// (an Event is a record, not state).
async fn create_all(client: Client, gate: Arc<ApiGate>, mut waiting: mpsc::Receiver<Event>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(event) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (client, gate) = (client.clone(), gate.clone());
        tokio::spawn(async move {
            let namespace = event.metadata.namespace.clone().unwrap_or_default();
            let events: Api<Event> = Api::namespaced(client, &namespace);
            let gated = gate.enter().await;
            let created = events.create(&PostParams::default(), &event).await;
            drop(gated);
            if let Err(e) = created {
                let regarding = event.regarding.as_ref();
                tracing::warn!(
                    error = %e,
                    reason = event.reason.as_deref().unwrap_or_default(),
                    namespace,
                    name = regarding.and_then(|r| r.name.as_deref()).unwrap_or_default(),
                    "cannot publish event"
                );
            }
            drop(slot);
        });
    }
}

/// `text` cut to at most `limit` bytes on a character boundary.
fn truncate(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncates_on_a_character_boundary() {
        assert_eq!(super::truncate("abc", 10), "abc");
        assert_eq!(super::truncate("aé", 2), "a");
        assert_eq!(super::truncate(&"x".repeat(2000), 1024).len(), 1024);
    }
}
