//! The broker connection: rumqttc's event loop, polled by one task, with
//! reconnection and exponential backoff (rumqttc has none of its own),
//! `porchlight/status` as the retained last will, and a `Connected` message
//! to the core on every ConnAck so it resubscribes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

use crate::{AlarmError, AlarmOptions, Inbound, LinkStatus};

/// `mqtt://HOST[:PORT]` → (host, port). TLS (`mqtts://`) is not supported
/// yet.
pub(crate) fn parse_url(url: &str) -> Result<(String, u16), AlarmError> {
    let bad = || AlarmError::BadUrl(url.to_owned());
    let rest = url.trim().strip_prefix("mqtt://").ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('@') || rest.contains('/') {
        return Err(bad());
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Ok((h.to_owned(), p.parse().map_err(|_| bad())?)),
        Some(_) => Err(bad()),
        None => Ok((rest.to_owned(), 1883)),
    }
}

/// The core's side of the connection.
pub(crate) struct Link {
    client: AsyncClient,
    connected: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Queues a publish (QoS 1). Never blocks: while the broker is away the
    /// request waits in rumqttc's queue; when that is full it is dropped
    /// and logged.
    pub fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) {
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            tracing::warn!(%topic, "alarm: cannot queue an MQTT message: {e}");
        }
    }

    pub fn subscribe(&self, topic: &str) -> bool {
        match self.client.try_subscribe(topic, QoS::AtLeastOnce) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%topic, "alarm: cannot subscribe: {e}");
                false
            }
        }
    }

    pub fn unsubscribe(&self, topic: &str) {
        let _ = self.client.try_unsubscribe(topic);
    }

    /// Disconnects cleanly (after queued publishes) and ends the task.
    pub async fn close(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

pub(crate) fn spawn(
    host: String,
    port: u16,
    o: &AlarmOptions,
    inbound: mpsc::Sender<Inbound>,
    status: watch::Sender<LinkStatus>,
) -> Link {
    let mut opts = MqttOptions::new(o.client_id.clone(), host, port);
    opts.set_keep_alive(o.keep_alive);
    opts.set_clean_session(true);
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    opts.set_last_will(LastWill::new(
        o.topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let connected = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let backoff_max = o.backoff_max;
    let task = {
        let connected = connected.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let first = Duration::from_millis(100);
            let mut backoff = first;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = first;
                        connected.store(true, Ordering::SeqCst);
                        status.send_modify(|s| {
                            s.connected = true;
                            s.connects += 1;
                        });
                        tracing::info!("alarm: connected to the MQTT broker");
                        if inbound.send(Inbound::Connected).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if inbound
                            .send(Inbound::Publish(p.topic.clone(), p.payload.to_vec()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        if stop.load(Ordering::SeqCst) {
                            // Let the DISCONNECT go out, then end.
                            let _ = tokio::time::timeout(Duration::from_millis(200), events.poll())
                                .await;
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let was = connected.swap(false, Ordering::SeqCst);
                        let msg = e.to_string();
                        if was {
                            tracing::warn!("alarm: lost the MQTT broker: {msg}; reconnecting");
                        } else {
                            tracing::debug!(
                                "alarm: MQTT broker unreachable: {msg}; retrying in {backoff:?}"
                            );
                        }
                        status.send_modify(|s| {
                            s.connected = false;
                            s.last_error = Some(msg);
                        });
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(backoff_max);
                    }
                }
            }
        })
    };
    Link {
        client,
        connected,
        stop,
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert_eq!(parse_url("mqtt://broker").unwrap(), ("broker".into(), 1883));
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://x:notaport").is_err());
    }
}
