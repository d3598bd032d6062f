//! The etcd v3 backend: the `Store` trait over a real etcd cluster, with bounded retries so an
//! unreachable etcd surfaces as `StoreError::Unavailable` instead of a hang.

use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, KvClient,
    MaintenanceClient, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient,
    WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tonic::Code;

use crate::{
    EventKind, KeyValue, ListRequest, ListResponse, MAX_VALUE_BYTES, Result, Revision, Store,
    StoreError, WatchEvent, WatchStream, check_value_size, prefix_end,
};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// HTTP/2 pings on open watches detect a vanished etcd host; etcd answers pings more frequent
/// than 5s (`--grpc-keepalive-min-time`) with GOAWAY, so stay well above that.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// etcd's own gRPC send limit (`math.MaxInt32`); tonic's 4 MiB default would fail a list page or
/// a watch batch of large objects.
const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;
/// A key no capstan object uses: reads of it only fetch a response header.
const PROBE_KEY: &[u8] = b"\0";

/// How to reach etcd and how long to keep trying when it does not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Client URLs, `http://HOST:PORT`.
    pub endpoints: Vec<String>,
    /// How long one attempt at a request (or at connecting) may take.
    pub request_timeout: Duration,
    /// How long a request is retried while etcd is unreachable before it fails as `Unavailable`.
    pub retry_deadline: Duration,
}

impl EtcdOptions {
    /// Options for `endpoints` with timeouts suited to an API server: a request fails as
    /// `Unavailable` after about 15s without etcd, well inside a client's 60s request timeout.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            request_timeout: Duration::from_secs(5),
            retry_deadline: Duration::from_secs(15),
        }
    }
}

/// A `Store` backed by an etcd v3 cluster: etcd provides the revisions, compare-and-swap,
/// watches and compaction natively, so each operation is one etcd request or transaction.
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    maintenance: MaintenanceClient,
    /// Owns the sender that feeds endpoints to the balanced channel the clients above share.
    _client: Client,
    options: EtcdOptions,
    /// `options.endpoints` joined, for messages.
    endpoints: String,
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers, retrying until `options.retry_deadline`.
    pub async fn connect(options: EtcdOptions) -> Result<Self> {
        let connect_options = ConnectOptions::new()
            .with_connect_timeout(options.request_timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, options.request_timeout)
            // etcd rejects pings on a connection without streams (GOAWAY "too_many_pings").
            .with_keep_alive_while_idle(false)
            // Without a leader etcd cannot serve linearizable requests; this makes it fail them
            // (and cancel watches) at once instead of leaving them waiting.
            .with_require_leader(true);
        let endpoints = options.endpoints.join(",");
        // Connecting only sets up a lazy channel; it fails only on malformed endpoints.
        let client =
            Client::connect(&options.endpoints, Some(connect_options)).await.map_err(|error| {
                StoreError::Internal(format!("cannot use etcd endpoints {endpoints:?}: {error}"))
            })?;
        let store = Self {
            kv: client.kv_client().max_decoding_message_size(MAX_MESSAGE_BYTES),
            watch: client.watch_client().max_decoding_message_size(MAX_MESSAGE_BYTES),
            maintenance: client.maintenance_client(),
            _client: client,
            options,
            endpoints,
        };
        // Prove etcd answers now, so a wrong endpoint fails at startup, not at the first request.
        store.current_revision().await?;
        Ok(store)
    }

    /// Runs one etcd request, retrying it with backoff while etcd is unreachable or leaderless.
    /// Retrying writes is safe because every write is compare-and-swap guarded: a write that
    /// landed but whose answer was lost comes back as a spurious `Conflict`/`AlreadyExists`.
    async fn request<T, F, Fut>(&self, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + self.options.retry_deadline;
        let mut backoff = FIRST_BACKOFF;
        let mut budget = self.options.request_timeout;
        loop {
            let error = match tokio::time::timeout(budget, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => match Failure::from(error) {
                    Failure::Transient(message) => message,
                    failure => return Err(failure),
                },
                // The balanced channel waits for a connection without bound; this is the bound.
                Err(_) => format!("no answer within {budget:.0?}"),
            };
            let now = Instant::now();
            if now + backoff >= deadline {
                return Err(Failure::Unavailable(format!(
                    "etcd at {} unreachable: {error}",
                    self.endpoints
                )));
            }
            tracing::warn!(
                "etcd at {} unreachable: {error}; retrying in {backoff:?}",
                self.endpoints
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            // Later attempts stop at the deadline, so a call never runs much past it.
            budget = self
                .options
                .request_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
        }
    }

    async fn txn(&self, key: &str, size: usize, txn: Txn) -> Result<TxnResponse> {
        self.request(|| {
            let mut kv = self.kv.clone();
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|failure| self.write_error(failure, key, size))
    }

    /// A (linearizable) range read, retried like every request.
    async fn range(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<etcd_client::GetResponse, Failure> {
        self.request(|| {
            let mut kv = self.kv.clone();
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, Some(options)).await }
        })
        .await
    }

    fn write_error(&self, failure: Failure, key: &str, size: usize) -> StoreError {
        if let Failure::TooLarge = failure {
            // Our own limit passed, so etcd's --max-request-bytes leaves too little room for the
            // key and the transaction around a value this size.
            tracing::warn!(
                "etcd at {} refused a {size}-byte value for {key:?} as too large; run etcd with \
                 --max-request-bytes of at least {} to store every value capstan accepts",
                self.endpoints,
                MAX_VALUE_BYTES + 64 * 1024
            );
            return StoreError::ValueTooLarge { key: key.to_owned(), size, limit: MAX_VALUE_BYTES };
        }
        store_error(failure, &self.endpoints)
    }

    /// The error for a read at `requested` that etcd refused.
    async fn revision_error(&self, failure: Failure, requested: Revision) -> StoreError {
        match failure {
            Failure::Compacted => StoreError::Compacted {
                requested,
                compacted: self.compacted_revision(requested).await,
            },
            Failure::FutureRevision => StoreError::FutureRevision {
                requested,
                current: self.current_revision().await.unwrap_or(requested - 1),
            },
            failure => store_error(failure, &self.endpoints),
        }
    }

    /// etcd's compacted revision, which its "compacted" error does not state: a watch from a
    /// compacted revision is canceled with it. Best effort: `requested` if the probe fails.
    async fn compacted_revision(&self, requested: Revision) -> Revision {
        let probe = async {
            let options = WatchOptions::new().with_start_revision(requested.max(1));
            let mut watch = self.watch.clone().watch(PROBE_KEY, Some(options)).await?;
            while let Some(response) = watch.message().await? {
                if response.compact_revision() > 0 {
                    return Ok(Some(response.compact_revision()));
                }
                if response.canceled() {
                    break;
                }
            }
            Ok::<_, etcd_client::Error>(None)
        };
        match tokio::time::timeout(self.options.request_timeout, probe).await {
            Ok(Ok(Some(compacted))) => compacted,
            _ => requested,
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut response = self
            .range(key.as_bytes().to_vec(), GetOptions::new())
            .await
            .map_err(|failure| store_error(failure, &self.endpoints))?;
        response.take_kvs().into_iter().next().map(key_value).transpose()
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let start = match request.start_key {
            Some(start_key) if start_key > request.prefix => start_key,
            _ => request.prefix.clone(),
        };
        // etcd has no empty key: "\0" is the first key, and a range end of "\0" means "no end".
        let key = if start.is_empty() { vec![0] } else { start.into_bytes() };
        let end = prefix_end(&request.prefix).unwrap_or_else(|| vec![0]);
        let mut options = GetOptions::new().with_range(end);
        let revision = request.revision.filter(|&revision| revision > 0);
        if let Some(revision) = revision {
            options = options.with_revision(revision);
        }
        if let Some(limit) = request.limit.filter(|&limit| limit > 0) {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let mut response = match self.range(key, options).await {
            Ok(response) => response,
            Err(failure) => {
                return Err(match revision {
                    Some(revision) => self.revision_error(failure, revision).await,
                    None => store_error(failure, &self.endpoints),
                });
            }
        };
        let read_at = header_revision(response.header())?;
        let more = response.more();
        let kvs = response.take_kvs().into_iter().map(key_value).collect::<Result<_>>()?;
        Ok(ListResponse { kvs, revision: revision.unwrap_or(read_at), more })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let response = self.txn(key, value.len(), txn).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let txn = Txn::new()
            .when([
                // A missing key has mod revision 0: without this, `expected == 0` would create it.
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value.to_vec(), Some(PutOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(key, value.len(), txn).await?;
        if !response.succeeded() {
            return Err(compare_failed(key, Some(expected), &response)?);
        }
        let previous = match response.op_responses().into_iter().next() {
            Some(TxnOpResponse::Put(put)) => put.prev_key().cloned(),
            _ => None,
        };
        let Some(previous) = previous else {
            return Err(unexpected("an update without the previous value"));
        };
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: previous.create_revision(),
            mod_revision: header_revision(response.header())?,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let mut compares = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(key, 0, txn).await?;
        if !response.succeeded() {
            return Err(compare_failed(key, expected, &response)?);
        }
        let previous = match response.op_responses().into_iter().next() {
            Some(TxnOpResponse::Delete(mut delete)) => delete.take_prev_kvs().into_iter().next(),
            _ => None,
        };
        let Some(previous) = previous else {
            return Err(unexpected("a delete without the previous value"));
        };
        Ok(KeyValue { mod_revision: header_revision(response.header())?, ..key_value(previous)? })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // etcd reports a compacted start revision only later, on the stream; a read at `after`
        // fails the same way at once. Revision 1 is a fresh etcd's empty state.
        let check_at = after.max(1);
        let probe = GetOptions::new().with_count_only().with_revision(check_at);
        // A revision not reached yet is fine: the watch waits for it, as etcd's own does.
        match self.range(PROBE_KEY.to_vec(), probe).await {
            Ok(_) | Err(Failure::FutureRevision) => {}
            Err(failure) => return Err(self.revision_error(failure, after).await),
        }

        let options =
            WatchOptions::new().with_prefix().with_start_revision(after + 1).with_prev_key();
        // Wait for etcd's "created" answer too, so a watch that cannot be set up fails here.
        let (requests, responses, created) = self
            .request(|| {
                let mut watch = self.watch.clone();
                let (prefix, options) = (prefix.to_owned(), options.clone());
                async move {
                    let (requests, mut responses) =
                        watch.watch(prefix, Some(options)).await?.split();
                    let created = responses.message().await?;
                    Ok((requests, responses, created))
                }
            })
            .await
            .map_err(|failure| store_error(failure, &self.endpoints))?;
        let mut feed = EventFeed {
            _requests: requests,
            responses,
            pending: VecDeque::new(),
            delivered: after,
            ended: false,
            endpoints: self.endpoints.clone(),
        };
        match created {
            Some(response) => feed.absorb(response),
            None => feed.end(feed.closed_error()),
        }
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            let item = feed.next().await?;
            Some((item, feed))
        })
        .boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        // A linearizable read: its header carries the revision the quorum has reached.
        let response = self
            .range(PROBE_KEY.to_vec(), GetOptions::new().with_count_only())
            .await
            .map_err(|failure| store_error(failure, &self.endpoints))?;
        header_revision(response.header())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let result = self
            .request(|| {
                let mut kv = self.kv.clone();
                async move { kv.compact(revision, None).await }
            })
            .await;
        match result {
            Ok(_) | Err(Failure::Compacted) => Ok(()),
            Err(failure) => Err(self.revision_error(failure, revision).await),
        }
    }

    async fn snapshot(&self, path: &Path) -> Result<()> {
        let mut snapshot = self
            .request(|| {
                let mut maintenance = self.maintenance.clone();
                async move { maintenance.snapshot().await }
            })
            .await
            .map_err(|failure| store_error(failure, &self.endpoints))?;
        // Written aside and renamed, so `path` never holds a partial snapshot.
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let io_error = |error: std::io::Error| {
            StoreError::Internal(format!("writing the snapshot to {}: {error}", partial.display()))
        };
        let mut file = tokio::fs::File::create(&partial).await.map_err(io_error)?;
        let written = async {
            loop {
                let chunk = tokio::time::timeout(self.options.request_timeout, snapshot.message())
                    .await
                    .map_err(|_| {
                        StoreError::Unavailable(format!(
                            "etcd at {} stopped sending the snapshot",
                            self.endpoints
                        ))
                    })?
                    .map_err(|error| store_error(Failure::from(error), &self.endpoints))?;
                let Some(chunk) = chunk else { break };
                file.write_all(chunk.blob()).await.map_err(io_error)?;
            }
            file.sync_all().await.map_err(io_error)?;
            tokio::fs::rename(&partial, path).await.map_err(io_error)
        }
        .await;
        if written.is_err() {
            // Best effort: the error that matters is the one being returned.
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written
    }
}

/// One etcd watch as store events. Dropping it drops the gRPC stream, which cancels the watch
/// on etcd's side.
struct EventFeed {
    /// The request half of the watch stream; closing it would end the watch.
    _requests: WatchRequestSender,
    responses: WatchResponseStream,
    /// Items of the last response not handed out yet: etcd batches events.
    pending: VecDeque<Result<WatchEvent>>,
    /// The revision of the last event handed out: where the watcher would have to resume.
    delivered: Revision,
    ended: bool,
    endpoints: String,
}

impl EventFeed {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if let Ok(event) = &item {
                    self.delivered = event.kv.mod_revision;
                }
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.responses.message().await {
                Ok(Some(response)) => self.absorb(response),
                Ok(None) => self.end(self.closed_error()),
                Err(error) => self.end(store_error(Failure::from(error), &self.endpoints)),
            }
        }
    }

    fn absorb(&mut self, response: WatchResponse) {
        for event in response.events() {
            match watch_event(event) {
                Ok(event) => self.pending.push_back(Ok(event)),
                Err(error) => return self.end(error),
            }
        }
        if response.compact_revision() > 0 {
            // Where the watcher stands once the events before this point are handed out.
            let requested = self
                .pending
                .back()
                .and_then(|item| item.as_ref().ok())
                .map_or(self.delivered, |event| event.kv.mod_revision);
            self.end(StoreError::Compacted { requested, compacted: response.compact_revision() });
        } else if response.canceled() {
            // e.g. "etcdserver: no leader": the caller re-watches from its last revision.
            let reason = response.cancel_reason().to_owned();
            self.end(StoreError::Unavailable(format!(
                "etcd at {} canceled the watch: {reason}",
                self.endpoints
            )));
        }
    }

    /// Queues `error` as the last item.
    fn end(&mut self, error: StoreError) {
        self.pending.push_back(Err(error));
        self.ended = true;
    }

    fn closed_error(&self) -> StoreError {
        StoreError::Unavailable(format!("etcd at {} closed the watch", self.endpoints))
    }
}

/// An etcd request's failure, sorted by what the store does about it.
#[derive(Debug)]
enum Failure {
    /// etcd is unreachable, leaderless or overloaded: retry.
    Transient(String),
    /// Still transient after the retry deadline.
    Unavailable(String),
    Compacted,
    FutureRevision,
    TooLarge,
    Other(String),
}

impl From<etcd_client::Error> for Failure {
    fn from(error: etcd_client::Error) -> Self {
        use etcd_client::Error;
        match error {
            Error::GRpcStatus(status) => {
                let message = status.message();
                match status.code() {
                    // tonic reports refused and broken connections as Unavailable or Unknown,
                    // etcd reports leader trouble and its own timeouts as Unavailable.
                    Code::Unavailable
                    | Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Cancelled => Self::Transient(with_causes(message, &status)),
                    Code::ResourceExhausted if message.contains("too many requests") => {
                        Self::Transient(message.to_owned())
                    }
                    Code::OutOfRange
                        if message.contains("required revision has been compacted") =>
                    {
                        Self::Compacted
                    }
                    Code::OutOfRange
                        if message.contains("required revision is a future revision") =>
                    {
                        Self::FutureRevision
                    }
                    Code::InvalidArgument if message.contains("request is too large") => {
                        Self::TooLarge
                    }
                    _ => Self::Other(status.to_string()),
                }
            }
            Error::TransportError(error) => {
                Self::Transient(with_causes(&error.to_string(), &error))
            }
            Error::IoError(error) => Self::Transient(error.to_string()),
            other => Self::Other(other.to_string()),
        }
    }
}

/// `message` followed by the causes behind it that it does not already say, e.g.
/// "tcp connect error: Connection refused (os error 111)".
fn with_causes(message: &str, error: &dyn std::error::Error) -> String {
    let mut text = message.to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The error for a failure that needs no context from the request.
fn store_error(failure: Failure, endpoints: &str) -> StoreError {
    match failure {
        Failure::Unavailable(message) => StoreError::Unavailable(message),
        Failure::Transient(message) => {
            StoreError::Unavailable(format!("etcd at {endpoints} unreachable: {message}"))
        }
        Failure::Compacted => StoreError::Internal("etcd: revision compacted".into()),
        Failure::FutureRevision => StoreError::Internal("etcd: revision in the future".into()),
        Failure::TooLarge => StoreError::Internal("etcd: request too large".into()),
        Failure::Other(message) => StoreError::Internal(format!("etcd: {message}")),
    }
}

/// The error for a compare-and-swap that failed: the `or_else` branch read the key.
fn compare_failed(
    key: &str,
    expected: Option<Revision>,
    response: &TxnResponse,
) -> Result<StoreError> {
    let current = match response.op_responses().into_iter().next() {
        Some(TxnOpResponse::Get(mut get)) => get.take_kvs().into_iter().next(),
        _ => return Err(unexpected("a failed compare-and-swap without the key's current state")),
    };
    Ok(match (current, expected) {
        (None, _) => StoreError::NotFound(key.to_owned()),
        (Some(current), Some(expected)) => StoreError::Conflict {
            key: key.to_owned(),
            expected,
            current: Box::new(key_value(current)?),
        },
        // Only the mod revision can differ from what was expected for an existing key.
        (Some(_), None) => {
            return Err(unexpected("a failed unconditional write to an existing key"));
        }
    })
}

fn watch_event(event: &etcd_client::Event) -> Result<WatchEvent> {
    let Some(kv) = event.kv() else {
        return Err(unexpected("a watch event without a key"));
    };
    match event.event_type() {
        EventType::Put => Ok(WatchEvent { kind: EventKind::Put, kv: key_value(kv.clone())? }),
        EventType::Delete => {
            // etcd's delete event has only the key and the deletion's revision; the last value
            // comes from `prev_kv`, which etcd omits only if that revision was compacted.
            let Some(previous) = event.prev_kv() else {
                return Err(unexpected("a delete event without the previous value"));
            };
            Ok(WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue { mod_revision: kv.mod_revision(), ..key_value(previous.clone())? },
            })
        }
    }
}

fn key_value(kv: etcd_client::KeyValue) -> Result<KeyValue> {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|error| {
        StoreError::Internal(format!(
            "etcd holds a key that is not UTF-8: {:?}",
            String::from_utf8_lossy(error.as_bytes())
        ))
    })?;
    Ok(KeyValue { key, value: Bytes::from(value), create_revision, mod_revision })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(etcd_client::ResponseHeader::revision)
        .ok_or_else(|| unexpected("a response without a header"))
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Internal(format!("etcd sent {what}"))
}
