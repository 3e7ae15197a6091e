//! The log sink: each alert as one line in the daemon's log and nothing on the network,
//! so the shipped config shows its alerts before any receiver is set up.

use super::{Content, SinkClient};
use crate::alert::retry::DeliveryError;
use crate::model::payload::{AlertPayload, Payload};

/// Logs `content`, a digest as one line per alert; it cannot fail.
pub(super) fn deliver(client: &SinkClient, content: Content<'_>) -> Result<(), DeliveryError> {
    match content {
        Content::Alert(payload) => log(client, payload),
        Content::Followup(payload) => log_followup(client, payload),
        Content::Digest { alerts, .. } => alerts.iter().for_each(|p| log(client, p)),
    }
    Ok(())
}

/// The `log` sink's line for a follow-up.
fn log_followup(client: &SinkClient, payload: &Payload) {
    let f = super::text::followup(payload);
    tracing::info!(
        sink = %client.id,
        event = %payload.event(),
        id = %payload.id(),
        topic = %payload.topic_name(),
        update = %f.headline,
        url = f.url.unwrap_or(""),
        "Follow-up."
    );
}

/// The `log` sink: one line per alert.
fn log(client: &SinkClient, payload: &AlertPayload) {
    let entities = payload
        .entities
        .iter()
        .map(|e| e.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        sink = %client.id,
        alert = %payload.id,
        topic = %payload.topic.name,
        title = %payload.item.title,
        url = payload.item.url.as_deref().unwrap_or(""),
        entities = %entities,
        score = payload.score,
        "Alert."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sinks::testing::{at, http, payload, sink};
    use crate::config::SinkKind;

    #[tokio::test]
    async fn log_sink_sends_nothing() {
        let client = SinkClient::new(&sink(SinkKind::Log, None), None).unwrap();
        client
            .send(&http(), &Payload::Alert(payload()), at(0))
            .await
            .unwrap();
    }
}
