//! What runs: groups of cells that share a workload and size, with their clients and message counts.

use crate::args::Options;
use crate::spec::{Client, Workload};

/// The four clients that have every workload.
const CLIENTS: [Client; 4] = [Client::OursBlocking, Client::OursTokio, Client::AsyncNats, Client::NatsSync];
/// The clients of the ingest row (nats-sync has no pending limit to give it the same workload).
const INGEST_CLIENTS: [Client; 4] = [Client::OursBlocking, Client::OursTokio, Client::AsyncNats, Client::Raw];
/// The clients with a service API.
/// `raw` is the fastest service there can be (a socket echoing each request's payload), with the same
/// requesters: the ceiling the requesters and the server allow.
const MICRO_CLIENTS: [Client; 4] = [Client::OursBlocking, Client::OursTokio, Client::AsyncNats, Client::Raw];
/// Publish payload sizes.
const PUBLISH_SIZES: [usize; 4] = [16, 128, 1024, 16 * 1024];
/// Ingest payload sizes.
const INGEST_SIZES: [usize; 2] = [16, 1024];

/// Cells run together, round by round, and compared with the async-nats member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    /// Payload size in bytes.
    pub(crate) size: usize,
    /// Client and server on CPU 0.
    pub(crate) pinned: bool,
    /// Messages per run.
    pub(crate) messages: usize,
    /// The cells: the workload each reports under, and its client.
    pub(crate) members: Vec<(Workload, Client)>,
}

impl Group {
    /// A short name for progress lines.
    pub(crate) fn label(&self) -> String {
        let w = self.members.first().map_or("?", |(w, _)| w.name());
        let pinned = if self.pinned { " 1cpu" } else { "" };
        format!("{w} {} B{pinned}", self.size)
    }
}

/// Message counts per run.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Publishes (16 KiB rows take a tenth).
    publish: usize,
    /// pubsub messages.
    pubsub: usize,
    /// reqrep requests (micro takes four times as many, spread over its threads).
    reqrep: usize,
    /// Ingested messages (1 KiB rows take a quarter).
    ingest: usize,
}

impl Counts {
    /// The counts for a full or a `--quick` run.
    fn new(quick: bool) -> Counts {
        if quick {
            Counts { publish: 100_000, pubsub: 50_000, reqrep: 500, ingest: 200_000 }
        } else {
            Counts { publish: 1_000_000, pubsub: 300_000, reqrep: 5_000, ingest: 2_000_000 }
        }
    }
}

/// Publishes of the `publish-rss` row, whatever `--quick` says: memory growth is the point.
const PUBLISH_RSS_MESSAGES: usize = 3_000_000;
/// Messages of the `pubsub-rss` row, whatever `--quick` says.
const PUBSUB_RSS_MESSAGES: usize = 2_000_000;

/// The groups to run for `options`, in report order; pinned rows only when `taskset` works.
pub(crate) fn plan(options: &Options, taskset: bool) -> Vec<Group> {
    let n = Counts::new(options.quick);
    let wanted = |w: Workload| options.only.contains(&w);
    let mut groups = vec![];
    let mut add = |size, pinned, messages, members: Vec<(Workload, Client)>| {
        let members: Vec<_> = members.into_iter().filter(|(w, c)| wanted(*w) && options.clients.contains(c)).collect();
        if !members.is_empty() {
            groups.push(Group { size, pinned, messages, members });
        }
    };
    let each = |w: Workload, clients: &[Client]| clients.iter().map(|&c| (w, c)).collect::<Vec<_>>();
    for size in PUBLISH_SIZES {
        // The raw ceiling runs in the publish rounds, so that it pairs with async-nats round by round.
        let mut members = each(Workload::Publish, &CLIENTS);
        members.push((Workload::RawPublish, Client::Raw));
        add(size, false, if size >= 16 * 1024 { n.publish / 10 } else { n.publish }, members);
    }
    // The raw pair (a publishing socket, a subscribed one) is the ceiling the server allows this row.
    let mut members = each(Workload::Pubsub, &CLIENTS);
    members.push((Workload::Pubsub, Client::Raw));
    add(16, false, n.pubsub, members);
    add(16, false, n.reqrep, each(Workload::Reqrep, &CLIENTS));
    // A round trip between two CPUs is dominated by waking the other one; on one CPU it is the clients' cost.
    if taskset {
        add(16, true, n.reqrep, each(Workload::Reqrep, &CLIENTS));
    }
    for size in INGEST_SIZES {
        add(size, false, if size >= 1024 { n.ingest / 4 } else { n.ingest }, each(Workload::Ingest, &INGEST_CLIENTS));
    }
    let mut members = each(Workload::Micro, &MICRO_CLIENTS);
    members.push((Workload::MicroInline, Client::OursBlocking));
    add(16, false, n.reqrep * 4, members);
    let mut rss = each(Workload::PublishRss, &CLIENTS);
    // The raw publisher's RSS is the floor: what this binary takes without a client.
    rss.push((Workload::PublishRss, Client::Raw));
    add(1024, false, PUBLISH_RSS_MESSAGES, rss);
    add(16, false, PUBSUB_RSS_MESSAGES, each(Workload::PubsubRss, &CLIENTS));
    groups
}

/// The workload whose async-nats cell a cell of `workload` is compared with.
pub(crate) fn baseline_workload(workload: Workload) -> Workload {
    match workload {
        Workload::RawPublish => Workload::Publish,
        Workload::MicroInline => Workload::Micro,
        w => w,
    }
}

/// The workload whose row of the markdown table a cell of `workload` goes in: the raw ceiling beside the
/// publishes; an option's own row for the inline service.
pub(crate) fn row_workload(workload: Workload) -> Workload {
    match workload {
        Workload::RawPublish => Workload::Publish,
        w => w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(only: &[Workload], clients: &[Client]) -> Options {
        Options { only: only.to_vec(), clients: clients.to_vec(), ..Options::default() }
    }

    #[test]
    fn everything_by_default() {
        let groups = plan(&Options::default(), true);
        // 4 publish sizes, pubsub, reqrep twice, 2 ingest sizes, micro, 2 memory rows.
        assert_eq!(groups.len(), 12);
        assert_eq!(groups[0].members.len(), 5);
        assert!(groups.iter().any(|g| g.pinned));
        assert!(plan(&Options::default(), false).iter().all(|g| !g.pinned));
    }

    #[test]
    fn memory_rows_keep_their_counts_when_quick() {
        let quick = Options { quick: true, ..Options::default() };
        let groups = plan(&quick, false);
        let rss: Vec<_> = groups.iter().filter(|g| g.members[0].0.is_rss()).map(|g| g.messages).collect();
        assert_eq!(rss, vec![PUBLISH_RSS_MESSAGES, PUBSUB_RSS_MESSAGES]);
        assert_eq!(groups[0].messages, 100_000);
    }

    #[test]
    fn only_and_clients_filter_members() {
        let groups = plan(&options(&[Workload::RawPublish, Workload::Ingest], &[Client::Raw, Client::AsyncNats]), true);
        let members: Vec<_> = groups.iter().map(|g| g.members.clone()).collect();
        assert_eq!(members.len(), 6);
        assert_eq!(members[0], vec![(Workload::RawPublish, Client::Raw)]);
        assert_eq!(members[4], vec![(Workload::Ingest, Client::AsyncNats), (Workload::Ingest, Client::Raw)]);
        assert!(plan(&options(&[Workload::Micro], &[Client::NatsSync]), true).is_empty());
    }

    #[test]
    fn the_inline_service_runs_in_the_micro_rounds_against_the_micro_baseline() {
        let groups = plan(&options(&[Workload::Micro, Workload::MicroInline], &Client::ALL), false);
        assert_eq!(groups.len(), 1, "one group, so that its runs pair with async-nats's round by round");
        assert!(groups[0].members.contains(&(Workload::MicroInline, Client::OursBlocking)));
        assert!(groups[0].members.contains(&(Workload::Micro, Client::AsyncNats)));
        assert_eq!(baseline_workload(Workload::MicroInline), Workload::Micro);
        assert_eq!(row_workload(Workload::MicroInline), Workload::MicroInline);
        assert_eq!(row_workload(Workload::RawPublish), Workload::Publish);
    }
}
