//! The generic webhook: its JSON bodies and their Standard Webhooks signature
//! (docs/webhooks.md, "The request" and "Verifying the signature"), together because the
//! signature covers the exact bytes of the body and the keys are this kind's alone.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::SystemTime;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{insert, unix_seconds, Content, SinkClient, SinkError};
use crate::alert::retry::DeliveryError;
use crate::config::Sink;
use crate::model::payload::AlertPayload;

// ---------------------------------------------------------------------------------
// Secrets and signatures
// ---------------------------------------------------------------------------------

/// Prefix of Standard Webhooks secrets; the rest is the base64 of the key.
pub const SECRET_PREFIX: &str = "whsec_";

/// Secrets encoded like the specification's examples: standard alphabet, and padding
/// accepted whether present or not, since people paste keys both ways.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) fn credential_note(variable: &str, credential: &Option<PathBuf>) -> String {
    match credential {
        Some(path) => format!("there is no systemd credential file {}", path.display()),
        None => format!(
            "$CREDENTIALS_DIRECTORY is not set, so no systemd credential {variable} was looked for"
        ),
    }
}

/// The signing keys in a secret value: space-separated, so a new key can be added
/// next to the old one during rotation and receivers accept either.
///
/// `whsec_<base64>` is decoded to its key bytes, as the specification says; a token
/// without the prefix is used as raw bytes. A `whsec_` token that is not valid base64
/// is used as raw bytes too (warned about, not fatal: refusing to start over it would
/// stop every other sink).
pub fn parse_secrets(value: &str) -> Vec<Vec<u8>> {
    let mut bad = Vec::new();
    let secrets = value
        .split_ascii_whitespace()
        .enumerate()
        .map(|(i, token)| match token.strip_prefix(SECRET_PREFIX) {
            Some(encoded) => match SECRET_BASE64.decode(encoded) {
                Ok(key) if !key.is_empty() => key,
                _ => {
                    bad.push(i + 1);
                    token.as_bytes().to_vec()
                }
            },
            None => token.as_bytes().to_vec(),
        })
        .collect();
    if !bad.is_empty() {
        // The positions only: the secret itself never goes to the log.
        tracing::warn!(
            positions = ?bad,
            "Signing secret starts with whsec_ but is not valid base64; using it as raw bytes."
        );
    }
    secrets
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` for one key.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac_sha256(secret);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` value: one signature per key, space-separated.
pub fn signature_header(secrets: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HMAC-SHA256 keyed with `secret`.
///
/// HMAC accepts keys of any length, but the `hmac` crate's `new_from_slice` still
/// returns a `Result`; building the 64-byte key block as RFC 2104 does (long keys
/// hashed, short ones zero-padded) gives the identical MAC with nothing to unwrap.
fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    if secret.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// The signing keys of a sink, when it has `secret_env`: the environment variable of
/// that name, else the systemd credential `$CREDENTIALS_DIRECTORY/<secret_env>` (so
/// `LoadCredential=NEWSWATCH_OPS_SECRET:/etc/newswatch/ops.secret` works and the secret
/// never sits in the unit's environment).
pub fn load_secret(sink: &Sink) -> Result<Option<Vec<Vec<u8>>>, SinkError> {
    let Some(variable) = sink.secret_env.as_deref() else {
        return Ok(None);
    };
    read_secret(
        &sink.id,
        variable,
        std::env::var_os(variable),
        std::env::var_os("CREDENTIALS_DIRECTORY"),
    )
    .map(Some)
}

/// [`load_secret`] with the environment passed in, for tests.
fn read_secret(
    sink: &str,
    variable: &str,
    value: Option<OsString>,
    credentials_dir: Option<OsString>,
) -> Result<Vec<Vec<u8>>, SinkError> {
    let keys = |text: &str, from: String| {
        let keys = parse_secrets(text);
        if keys.is_empty() {
            Err(SinkError::EmptySecret {
                sink: sink.to_string(),
                from,
            })
        } else {
            Ok(keys)
        }
    };
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        let from = format!("environment variable {variable}");
        let Some(text) = value.to_str() else {
            return Err(SinkError::NotUnicode {
                sink: sink.to_string(),
                from,
            });
        };
        return keys(text, from);
    }
    // A credential name is a file name; one with a path in it is not looked up.
    let credential = credentials_dir
        .filter(|dir| !dir.is_empty())
        .filter(|_| !variable.contains('/') && variable != "." && variable != "..")
        .map(|dir| PathBuf::from(dir).join(variable));
    let Some(path) = credential else {
        return Err(SinkError::MissingSecret {
            sink: sink.to_string(),
            variable: variable.to_string(),
            credential: None,
        });
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let from = format!("systemd credential {}", path.display());
            match String::from_utf8(bytes) {
                // Trailing newlines (and any whitespace) fall away in the split.
                Ok(text) => keys(&text, from),
                Err(_) => Err(SinkError::NotUnicode {
                    sink: sink.to_string(),
                    from,
                }),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(SinkError::MissingSecret {
            sink: sink.to_string(),
            variable: variable.to_string(),
            credential: Some(path),
        }),
        Err(source) => Err(SinkError::ReadCredential {
            sink: sink.to_string(),
            path,
            source,
        }),
    }
}

// ---------------------------------------------------------------------------------
// Bodies and delivery
// ---------------------------------------------------------------------------------

/// The generic webhook body: the payload as JSON, exactly docs/webhooks.md's "Body".
pub fn webhook_body(payload: &AlertPayload) -> Vec<u8> {
    match serde_json::to_vec(payload) {
        Ok(body) => body,
        // Plain structs of strings and numbers always serialise; should that ever
        // change, [`SinkClient::send`] reports it as a permanent failure instead.
        Err(err) => {
            tracing::error!(alert = %payload.id, error = %err, "Could not encode the alert body.");
            Vec::new()
        }
    }
}

/// The header naming the event type (`story.new`, `story.updated`, `item.updated`,
/// or `digest`): outside the signature, which covers the body, where `event` says the
/// same (docs/webhooks.md).
pub const EVENT_HEADER: &str = "newswatch-event";

/// `type` of a digest body.
pub const DIGEST_TYPE: &str = "newswatch.digest";
/// `version` of the digest body layout.
pub const DIGEST_VERSION: u32 = 1;

#[derive(Serialize)]
struct DigestBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    id: &'a str,
    alerts: &'a [AlertPayload],
}

/// The generic webhook body of a digest:
/// `{"type":"newswatch.digest","version":1,"id":"d_…","alerts":[…]}`, each element of
/// `alerts` exactly the body that alert would have been sent as on its own.
pub fn digest_body(id: &str, alerts: &[AlertPayload]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&DigestBody {
        kind: DIGEST_TYPE,
        version: DIGEST_VERSION,
        id,
        alerts,
    })
}

/// One attempt to post `content` to a generic webhook: the payload (or
/// [`digest_body`]) as JSON, with `webhook-id`, `webhook-timestamp` and, when the sink
/// has keys, `webhook-signature`.
pub(super) async fn deliver(
    client: &SinkClient,
    http: &reqwest::Client,
    content: Content<'_>,
    now: SystemTime,
) -> Result<(), DeliveryError> {
    let url = client.url()?;
    let id = content.id();
    let body = match content {
        Content::Alert(payload) => serde_json::to_vec(payload),
        Content::Followup(payload) => payload.to_json(),
        Content::Digest { id, alerts } => digest_body(id, alerts),
    }
    .map_err(|err| DeliveryError::Permanent {
        reason: format!("cannot encode the alert: {err}"),
    })?;
    let timestamp = unix_seconds(now);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    insert(&mut headers, "webhook-id", id)?;
    insert(&mut headers, "webhook-timestamp", &timestamp.to_string())?;
    insert(&mut headers, EVENT_HEADER, content.event())?;
    if !client.secrets.is_empty() {
        let signature = signature_header(&client.secrets, id, timestamp, &body);
        insert(&mut headers, "webhook-signature", &signature)?;
    }
    client.post(http, url, headers, body, id, now).await
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap as AxumHeaders, Method};
    use serde_json::Value;

    use super::*;
    use crate::alert::sinks::digest_id;
    use crate::alert::sinks::testing::{
        at, digest_alerts, http, ok_receiver, payload, send_to, sink,
    };
    use crate::config::SinkKind;

    /// HMAC-SHA256 written out from RFC 2104 over the `sha2` crate, to check the
    /// signatures independently of the `hmac` crate.
    fn hmac_by_hand(key: &[u8], message: &[u8]) -> [u8; 32] {
        const BLOCK: usize = 64;
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&ipad)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// What a receiver does: rebuild the signed content from the headers and the raw
    /// body, and look for a matching `v1` signature.
    fn verifies(key: &[u8], headers: &AxumHeaders, body: &[u8]) -> bool {
        let id = headers["webhook-id"].to_str().unwrap();
        let ts = headers["webhook-timestamp"].to_str().unwrap();
        let signed = format!("{id}.{ts}.").into_bytes();
        let expected = STANDARD.encode(hmac_by_hand(key, &[signed, body.to_vec()].concat()));
        headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|sig| sig == expected)
    }

    // --- secrets and signatures -----------------------------------------------------

    #[test]
    fn signature_matches_the_specification_example() {
        let secrets = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(secrets.len(), 1);
        assert_eq!(
            sign(
                &secrets[0],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn signature_matches_hand_written_hmac_for_any_key_length() {
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let expected = hmac_by_hand(&key, b"id.42.body");
            assert_eq!(
                sign(&key, "id", 42, b"body"),
                format!("v1,{}", STANDARD.encode(expected)),
                "key of {len} bytes"
            );
        }
    }

    #[test]
    fn secrets_parse_table() {
        let cases: &[(&str, Vec<Vec<u8>>)] = &[
            ("", vec![]),
            ("  \n", vec![]),
            ("whsec_aGVsbG8=", vec![b"hello".to_vec()]),
            // Padding is optional.
            ("whsec_aGVsbG8", vec![b"hello".to_vec()]),
            ("plain-secret\n", vec![b"plain-secret".to_vec()]),
            (
                "whsec_aGVsbG8= whsec_d29ybGQ=",
                vec![b"hello".to_vec(), b"world".to_vec()],
            ),
            // Not base64, or empty: the whole token as raw bytes.
            (
                "whsec_!!not-base64!!",
                vec![b"whsec_!!not-base64!!".to_vec()],
            ),
            ("whsec_", vec![b"whsec_".to_vec()]),
            ("old new", vec![b"old".to_vec(), b"new".to_vec()]),
        ];
        for (value, expected) in cases {
            assert_eq!(&parse_secrets(value), expected, "{value:?}");
        }
        assert_eq!(
            signature_header(&parse_secrets("a b"), "id", 1, b"x")
                .split(' ')
                .count(),
            2
        );
    }

    #[test]
    fn secret_from_environment_or_credential() {
        let dir = tempfile::tempdir().unwrap();
        let dir_os = || Some(OsString::from(dir.path()));
        std::fs::write(dir.path().join("NEWSWATCH_OPS_SECRET"), "whsec_aGVsbG8=\n").unwrap();

        // The variable wins over the credential.
        let keys =
            read_secret("ops", "NEWSWATCH_OPS_SECRET", Some("raw".into()), dir_os()).unwrap();
        assert_eq!(keys, vec![b"raw".to_vec()]);
        // No variable (or an empty one): the credential file, newline trimmed.
        for value in [None, Some(OsString::new())] {
            let keys = read_secret("ops", "NEWSWATCH_OPS_SECRET", value, dir_os()).unwrap();
            assert_eq!(keys, vec![b"hello".to_vec()]);
        }

        // Neither: the message names the sink, the variable and the file looked at.
        let err = read_secret("ops", "NEWSWATCH_OTHER", None, dir_os()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SinkError::MissingSecret { .. }), "{err:?}");
        assert!(message.contains("\"ops\""), "{message}");
        assert!(message.contains("NEWSWATCH_OTHER"), "{message}");
        assert!(
            message.contains(&dir.path().join("NEWSWATCH_OTHER").display().to_string()),
            "{message}"
        );
        let err = read_secret("ops", "NEWSWATCH_OTHER", None, None).unwrap_err();
        assert!(err.to_string().contains("CREDENTIALS_DIRECTORY"), "{err}");

        std::fs::write(dir.path().join("EMPTY"), "\n").unwrap();
        let err = read_secret("ops", "EMPTY", None, dir_os()).unwrap_err();
        assert!(matches!(err, SinkError::EmptySecret { .. }), "{err:?}");
        std::fs::write(dir.path().join("BINARY"), [0xff, 0xfe]).unwrap();
        let err = read_secret("ops", "BINARY", None, dir_os()).unwrap_err();
        assert!(matches!(err, SinkError::NotUnicode { .. }), "{err:?}");

        // No secret_env: no secret, and nothing looked up.
        assert_eq!(load_secret(&sink(SinkKind::Webhook, None)).unwrap(), None);
    }

    // --- bodies and delivery ----------------------------------------------------------

    #[test]
    fn webhook_body_is_the_payload() {
        let p = payload();
        let body = webhook_body(&p);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["type"], "newswatch.alert");
        assert_eq!(value["event"], "story.new");
        assert_eq!(value["version"], 1);
        assert_eq!(value["topic"]["id"], "ceasefire-talks");
        assert_eq!(value["item"]["published"], "2025-03-14T10:00:00Z");
        assert_eq!(value["detected_at"], "2025-03-14T10:01:02Z");
        assert_eq!(value["entities"][0]["mentions"], 3);
        assert_eq!(value["story"]["related"][0]["feed"], "Other");
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "type",
                "version",
                "event",
                "id",
                "topic",
                "item",
                "entities",
                "matched",
                "score",
                "story",
                "detected_at"
            ]
        );
        assert_eq!(serde_json::from_slice::<AlertPayload>(&body).unwrap(), p);
    }

    #[tokio::test]
    async fn webhook_delivery_is_signed_per_contract() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        send_to(SinkKind::Webhook, &rx.url(), Some(keys.clone()))
            .await
            .unwrap();
        let got = rx.one();
        assert_eq!(got.method, Method::POST);
        assert_eq!(got.headers["content-type"], "application/json");
        assert_eq!(got.headers["webhook-id"], "a_00c0ffee00c0ffee");
        assert_eq!(got.headers["webhook-timestamp"], "1741946462");
        let signature = got.headers["webhook-signature"].to_str().unwrap();
        assert!(signature.starts_with("v1,"), "{signature}");
        assert_eq!(signature.split(' ').count(), 1);
        assert!(verifies(&keys[0], &got.headers, &got.body));
        assert!(!verifies(b"wrong key", &got.headers, &got.body));
        let mut tampered = got.body.clone();
        tampered[10] ^= 1;
        assert!(!verifies(&keys[0], &got.headers, &tampered));
        assert_eq!(
            serde_json::from_slice::<AlertPayload>(&got.body).unwrap(),
            payload()
        );
    }

    /// A follow-up goes as its own body, signed alike, its type in `event` and in the
    /// `newswatch-event` header; a new story's alert says `story.new` there.
    #[tokio::test]
    async fn a_follow_up_is_signed_and_names_its_event_type() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let client = SinkClient::new(
            &sink(SinkKind::Webhook, Some(&rx.url())),
            Some(keys.clone()),
        )
        .unwrap();
        let update = crate::alert::sinks::testing::story_updated();
        client
            .send(&http(), &update, at(1_741_946_462))
            .await
            .unwrap();
        let got = rx.one();
        assert_eq!(got.headers["webhook-id"], "e_00c0ffee00c0ffee");
        assert_eq!(got.headers[EVENT_HEADER], "story.updated");
        assert!(verifies(&keys[0], &got.headers, &got.body));
        let value: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(value["type"], "newswatch.event");
        assert_eq!(value["event"], "story.updated");
        assert_eq!(value["story"]["sources"], 10);
        assert_eq!(value["added"].as_array().unwrap().len(), 7);
        assert_eq!(got.body, update.to_json().unwrap());

        let rx = ok_receiver().await;
        send_to(SinkKind::Webhook, &rx.url(), None).await.unwrap();
        assert_eq!(rx.one().headers[EVENT_HEADER], "story.new");
    }

    #[tokio::test]
    async fn webhook_with_rotated_secrets_sends_two_signatures() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_b2xkLWtleQ== brand-new-raw-key");
        assert_eq!(
            keys,
            vec![b"old-key".to_vec(), b"brand-new-raw-key".to_vec()]
        );
        send_to(SinkKind::Webhook, &rx.url(), Some(keys.clone()))
            .await
            .unwrap();
        let got = rx.one();
        let signatures: Vec<&str> = got.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .collect();
        assert_eq!(signatures.len(), 2);
        assert_ne!(signatures[0], signatures[1]);
        for key in &keys {
            assert!(verifies(key, &got.headers, &got.body));
        }
    }

    #[tokio::test]
    async fn webhook_without_secret_is_unsigned() {
        let rx = ok_receiver().await;
        send_to(SinkKind::Webhook, &rx.url(), None).await.unwrap();
        let got = rx.one();
        assert!(got.headers.get("webhook-signature").is_none());
        assert_eq!(got.headers["webhook-id"], "a_00c0ffee00c0ffee");
    }

    // --- digests --------------------------------------------------------------------

    #[test]
    fn digest_body_holds_the_alert_bodies() {
        let alerts = digest_alerts(3);
        let body = digest_body("d_0123456789abcdef", &alerts).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["type", "version", "id", "alerts"]);
        assert_eq!(value["type"], "newswatch.digest");
        assert_eq!(value["version"], 1);
        assert_eq!(value["id"], "d_0123456789abcdef");
        let inner: Vec<AlertPayload> = serde_json::from_value(value["alerts"].clone()).unwrap();
        assert_eq!(inner, alerts);
        // Each element is byte for byte the single alert's body.
        let single = String::from_utf8(webhook_body(&alerts[1])).unwrap();
        assert!(String::from_utf8(body).unwrap().contains(&single));
    }

    #[tokio::test]
    async fn webhook_digest_is_one_signed_request() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let client = SinkClient::new(
            &sink(SinkKind::Webhook, Some(&rx.url())),
            Some(keys.clone()),
        )
        .unwrap();
        let alerts = digest_alerts(3);
        let id = digest_id(alerts.iter().map(|p| p.id.as_str()));
        client
            .send_digest(&http(), &id, &alerts, at(1_741_946_462))
            .await
            .unwrap();
        let got = rx.one();
        assert_eq!(got.headers["content-type"], "application/json");
        assert_eq!(got.headers["webhook-id"], id.as_str());
        assert_eq!(got.headers["webhook-timestamp"], "1741946462");
        assert!(verifies(&keys[0], &got.headers, &got.body));
        assert_eq!(got.body, digest_body(&id, &alerts).unwrap());
    }
}
