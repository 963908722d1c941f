//! `micro consumer add`'s options for push consumers (natscli's `--deliver`-style words).

use std::time::Duration;

use clap::Args;
use nats_jetstream::model::ConsumerConfig;

use super::duration;

/// Makes the consumer a push consumer: the server sends its messages to a subject.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct PushArgs {
    /// Deliver to this subject (a push consumer); without it, a pull consumer.
    #[arg(long, value_name = "SUBJECT")]
    deliver_subject: Option<String>,
    /// Share the deliveries among the subscribers of this queue group (with --deliver-subject).
    #[arg(long, value_name = "GROUP", requires = "deliver_subject")]
    deliver_group: Option<String>,
    /// Send an idle heartbeat this often when there is nothing to deliver (with --deliver-subject).
    #[arg(long, value_parser = duration, requires = "deliver_subject")]
    heartbeat: Option<Duration>,
    /// Ask for flow control (with --deliver-subject and --heartbeat).
    #[arg(long, requires = "heartbeat")]
    flow_control: bool,
}

impl PushArgs {
    /// Sets the push fields of `config`.
    pub(crate) fn apply(&self, config: &mut ConsumerConfig) {
        config.deliver_subject = self.deliver_subject.clone().unwrap_or_default();
        config.deliver_group = self.deliver_group.clone().unwrap_or_default();
        config.idle_heartbeat = self.heartbeat.unwrap_or_default();
        config.flow_control = self.flow_control;
    }
}
