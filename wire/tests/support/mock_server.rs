//! A scripted stand-in for `nacred`, enough to test the client without the daemon: a shared port
//! and two shard ports on loopback, the real framing and codec, replies that name the port that
//! served them, and behaviours keyed by the request (delay, silence, close, bad frames). It logs
//! every request with the port it arrived on and tracks requests outstanding per connection.

use nacre_wire::frame::{FrameLimits, LENGTH_PREFIX_BYTES, frame};
use nacre_wire::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the mock does with one request.
enum Action {
    Reply(Reply),
    After(Duration, Reply),
    Silence,
    Close,
    /// Writes these bytes, then closes.
    Raw(Vec<u8>),
    /// Answers with a response kind no build knows yet (tag 200), keeping the connection.
    FutureKind,
}

/// The running mock. Its listener tasks live as long as the test's runtime.
pub struct Mock {
    pub primary: u16,
    pub topology: Topology,
    log: Arc<Mutex<Vec<(u16, Request)>>>,
    max_outstanding: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl Mock {
    pub async fn start() -> Mock {
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.expect("bind loopback") };
        let listeners = [bind().await, bind().await, bind().await];
        let port = |l: &TcpListener| l.local_addr().expect("bound").port();
        let (primary, shards) = (port(&listeners[0]), [port(&listeners[1]), port(&listeners[2])]);
        let owner_ports = (0..8).map(|p| shards[p % 2]).collect();
        let topology = Topology { partition_count: 8, shard_count: 2, owner_ports };
        let mock = Mock {
            primary,
            topology,
            log: Arc::default(),
            max_outstanding: Arc::default(),
            connections: Arc::default(),
        };
        for listener in listeners {
            tokio::spawn(accept(listener, mock.state()));
        }
        mock
    }

    fn state(&self) -> State {
        State {
            topology: self.topology.clone(),
            log: Arc::clone(&self.log),
            max_outstanding: Arc::clone(&self.max_outstanding),
            connections: Arc::clone(&self.connections),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.primary)
    }

    /// Every request so far, with the port it arrived on.
    pub fn log(&self) -> Vec<(u16, Request)> {
        self.log.lock().expect("log lock").clone()
    }

    /// The most requests ever outstanding (read, not yet answered) on one connection.
    pub fn max_outstanding(&self) -> usize {
        self.max_outstanding.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct State {
    topology: Topology,
    log: Arc<Mutex<Vec<(u16, Request)>>>,
    max_outstanding: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

async fn accept(listener: TcpListener, state: State) {
    let port = listener.local_addr().expect("bound").port();
    while let Ok((stream, _)) = listener.accept().await {
        state.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve(stream, port, state.clone()));
    }
}

async fn serve(stream: TcpStream, port: u16, state: State) {
    let (mut input, mut output) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if output.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let outstanding = Arc::new(AtomicUsize::new(0));
    let limits = FrameLimits::default();
    loop {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        if input.read_exact(&mut prefix).await.is_err() {
            break;
        }
        let len = limits.body_len(prefix).expect("the client sends frames under the cap");
        let mut bytes = prefix.to_vec();
        bytes.resize(LENGTH_PREFIX_BYTES + len, 0);
        if input.read_exact(&mut bytes[LENGTH_PREFIX_BYTES..]).await.is_err() {
            break;
        }
        let (id, request) = decode_request(&bytes).expect("the client sends valid frames");
        state.log.lock().expect("log lock").push((port, request.clone()));
        let now = outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_outstanding.fetch_max(now, Ordering::SeqCst);
        let (tx, outstanding) = (tx.clone(), Arc::clone(&outstanding));
        match respond(port, &state.topology, request) {
            Action::Reply(reply) => {
                outstanding.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(encode_response(id, &reply));
            }
            Action::After(delay, reply) => {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    outstanding.fetch_sub(1, Ordering::SeqCst);
                    let _ = tx.send(encode_response(id, &reply));
                });
            }
            Action::FutureKind => {
                outstanding.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(future_kind_response(id));
            }
            Action::Silence => {}
            Action::Close => break,
            Action::Raw(bytes) => {
                let _ = tx.send(bytes);
                tokio::time::sleep(Duration::from_millis(50)).await;
                break;
            }
        }
    }
    writer.abort();
}

/// A sound `Response` frame whose body is an empty table under union tag 200, built with the
/// generic flatbuffers builder (the generated one only knows today's kinds).
fn future_kind_response(id: u64) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let start = fbb.start_table();
    let body = fbb.end_table(start);
    let start = fbb.start_table();
    fbb.push_slot::<u64>(4, id, 0); // request_id
    fbb.push_slot_always(8, body); // body
    fbb.push_slot::<u8>(6, 200, 0); // body_type
    let root = fbb.end_table(start);
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data().to_vec()
}

/// The source a server would make of `spec`: stream ids from 1, in topic order.
fn source_info(spec: SourceSpec) -> SourceInfo {
    let topics = spec.topics.into_iter().zip(1..).map(|(topic, stream_id)| SourceTopic { topic, stream_id });
    SourceInfo {
        name: spec.name,
        table: spec.table,
        topics: topics.collect(),
        brokers: spec.brokers,
        dead_letter_topic: spec.dead_letter_topic,
        settings: spec.settings,
        retired: false,
    }
}

fn version(port: u16) -> VersionId {
    VersionId { ts: Ts(1), origin: Origin { kind: OriginKind::Direct, source_id: u32::from(port), seq: 0 } }
}

fn row(value: &[u8], port: u16) -> Row {
    Row { value: value.to_vec(), version: version(port), expires_at_ms: None }
}

fn respond(port: u16, topology: &Topology, request: Request) -> Action {
    let reply = match request {
        Request::Handshake(h) => match h.client_name.as_str() {
            "from-the-future" => Reply::Handshake(HandshakeOk {
                protocol_version: PROTOCOL_VERSION + 1,
                server_name: "mock".into(),
                server_version: "0".into(),
                topology: topology.clone(),
            }),
            "refused" => {
                let e = ErrorReply { code: ErrorCode::ProtocolVersion, message: "go away".into() };
                return Action::Raw(encode_response(0, &Reply::Error(e)));
            }
            "garbage" => return Action::Raw(frame(b"this is not a flatbuffer")),
            _ => Reply::Handshake(HandshakeOk {
                protocol_version: h.protocol_version.min(PROTOCOL_VERSION),
                server_name: "mock".into(),
                server_version: "0".into(),
                topology: topology.clone(),
            }),
        },
        Request::Topology => Reply::Topology(topology.clone()),
        Request::CreateTable(c) => Reply::Table(TableInfo { name: c.name, settings: c.settings, id: 1 }),
        Request::AlterTable(a) => Reply::Table(TableInfo { name: a.name, settings: TableSettings::default(), id: 1 }),
        Request::DropTable(_) => Reply::TableDropped,
        Request::ListTables => {
            Reply::Tables(vec![TableInfo { name: format!("port-{port}"), settings: TableSettings::default(), id: 1 }])
        }
        Request::Put(_) | Request::Delete(_) => Reply::Written(version(port)),
        Request::WriteBatch(b) => Reply::BatchWritten(b.ops.iter().map(|_| version(port)).collect()),
        Request::Get(g) if g.table == "missing" => {
            Reply::Error(ErrorReply { code: ErrorCode::UnknownTable, message: "no table named missing".into() })
        }
        Request::Get(g) => {
            let pk = g.key.partition_key.as_slice();
            if pk == b"silent" {
                return Action::Silence;
            }
            if pk == b"close" {
                return Action::Close;
            }
            if pk == b"future" {
                return Action::FutureKind;
            }
            if pk == b"stats" {
                return Action::Reply(Reply::Stats(Vec::new()));
            }
            if let Some(ms) = pk.strip_prefix(b"delay:") {
                let ms: u64 = String::from_utf8_lossy(ms).parse().expect("delay:<ms>");
                return Action::After(Duration::from_millis(ms), Reply::Get(Some(row(pk, port))));
            }
            Reply::Get(Some(row(pk, port)))
        }
        Request::MultiGet(m) => Reply::MultiGet(m.keys.iter().map(|k| Some(row(&k.partition_key, port))).collect()),
        Request::Scan(s) => Reply::Scan(ScanPage {
            rows: vec![ScanRow {
                sort_key: s.partition_key,
                value: vec![],
                version: version(port),
                expires_at_ms: None,
            }],
            cursor: None,
        }),
        Request::Versions(_) => Reply::Versions(KeyHistory {
            versions: vec![VersionEntry { version: version(port), payload: Payload::Tombstone }],
            watermark: None,
        }),
        Request::Explain(_) => Reply::Explain(Explanation {
            verdict: ExplainVerdict::Tombstone,
            candidates: vec![ExplainCandidate {
                entry: VersionEntry { version: version(port), payload: Payload::Tombstone },
                location: VersionLocation::Segment(u64::from(port)),
                standing: CandidateStanding::Winner,
            }],
            deciding_step: None,
            watermark: None,
            judged_at_ms: 0,
        }),
        Request::Stats => {
            Reply::Stats(vec![Stat { name: "port".into(), shard: None, partition: None, value: port.into() }])
        }
        Request::AddSource(spec) if spec.name == "taken" => {
            Reply::Error(ErrorReply { code: ErrorCode::SourceExists, message: "source \"taken\" exists".into() })
        }
        Request::AddSource(spec) => Reply::Source(source_info(spec)),
        Request::ListSources => Reply::Sources(vec![source_info(SourceSpec {
            name: format!("port-{port}"),
            table: "t".into(),
            topics: vec!["orders".into()],
            ..SourceSpec::default()
        })]),
        Request::RemoveSource(r) if r.name == "missing" => {
            Reply::Error(ErrorReply { code: ErrorCode::UnknownSource, message: "no source named missing".into() })
        }
        Request::RemoveSource(_) => Reply::SourceRemoved,
        Request::BulkLink { dir, .. } => {
            Reply::BulkLoads(vec![BulkLoadInfo { load_id: 7, dir, ..BulkLoadInfo::default() }])
        }
        Request::BulkStatus { load_id: Some(404) } => {
            Reply::Error(ErrorReply { code: ErrorCode::UnknownLoad, message: "no bulk load 404".into() })
        }
        Request::BulkStatus { load_id } => {
            Reply::BulkLoads(vec![BulkLoadInfo { load_id: load_id.unwrap_or(1), ..BulkLoadInfo::default() }; 2])
        }
        Request::BulkRollback { .. } => Reply::BulkLoads(Vec::new()),
        Request::Compact(_) => Reply::Compacted(Default::default()),
    };
    Action::Reply(reply)
}
