//! Publishes the plan's notes as events.k8s.io Events. Every note is a
//! transition, so each becomes one Event; unlike kube's `Recorder`, nothing
//! is cached for series (a cache that held every event of the last minutes,
//! and swept itself on every publish).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::plan::Note;

/// The most of a note an Event holds (the API server's limit is 1 kB).
const NOTE_LIMIT: usize = 1024;

pub struct Publisher {
    client: Client,
    /// `reportingController`: the field manager's name.
    controller: String,
    /// `reportingInstance`: this replica.
    instance: String,
}

impl Publisher {
    pub fn new(client: Client, controller: &str, instance: &str) -> Publisher {
        Publisher {
            client,
            controller: controller.into(),
            instance: instance.into(),
        }
    }

    pub async fn publish(
        &self,
        note: &Note,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
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
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        events
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
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
