//! async-smux-peer: the smuxref contract (conformance/CONTRACT.md) on the crates.io
//! `async_smux` crate, through its public API only (`mux_connection`, `MuxConfig`,
//! `MuxConnector`, `MuxAcceptor`, `MuxStream`).
//!
//! The shim never repairs what the library puts on the wire: whatever the crate
//! does is what the suite judges.  What the crate cannot be configured to do exits 127
//! (rule 3); README.md lists both.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::num::{NonZeroU64, NonZeroUsize};
use std::process::exit;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_smux::{mux_connection, MuxAcceptor, MuxConfig, MuxConnector, MuxStream, StreamIdType};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Notify};

/// Exit status for an option or value the peer does not support (rule 3).
const UNSUPPORTED: i32 = 127;
/// Longest command line, its '\n' included (rule 9).
const MAX_LINE: usize = 256;
/// The largest PSH payload the crate sends.  It has no frame size setting: every
/// `poll_write` becomes one PSH of at most `MAX_PAYLOAD_SIZE` (0xffff) bytes (async_smux
/// 0.4.0 src/frame.rs:10, src/mux.rs:670-678), so an application picks its frame size
/// by the size of its writes, and so does this shim for `--max-frame-size`.
const CRATE_MAX_FRAME: usize = 0xffff;
/// The crate's default receive bound: `max_rx_queue` frames (1024, src/builder.rs:45),
/// each of at most 0xffff bytes; INFO reports it in bytes.
const DEFAULT_RX_QUEUE: usize = 1024;
const CRATE_VERSION: &str = env!("ASYNC_SMUX_CRATE_VERSION");

type Stream = MuxStream<TcpStream>;
type Connector = MuxConnector<TcpStream>;

struct Options {
    server: bool,
    addr: String,
    /// Role-independent settings; `stream_id_type` is set per role in `session`.
    config: MuxConfig,
    /// `--max-frame-size`: the most bytes the shim hands the crate in one write.
    max_frame: usize,
    /// Client exchanges of rule 20, as `(n, LINE)`.
    runs: Vec<(u64, String)>,
}

fn unsupported(reason: &str) -> ! {
    eprintln!("async-smux-peer: unsupported: {reason}");
    exit(UNSUPPORTED);
}

fn number(option: &str, value: Option<String>) -> u64 {
    match value.as_deref().map(str::parse::<u64>) {
        Some(Ok(n)) => n,
        _ => unsupported(&format!("{option} needs a non-negative decimal number")),
    }
}

/// A keepalive time in milliseconds as the crate's whole, non-zero seconds
/// (`MuxConfig::keep_alive_interval` counts seconds: src/config.rs:20-27, src/mux.rs:74).
fn whole_seconds(option: &str, ms: u64) -> NonZeroU64 {
    if ms % 1000 != 0 {
        unsupported(&format!(
            "{option} {ms}: async_smux counts keepalive times in whole seconds"
        ));
    }
    NonZeroU64::new(ms / 1000)
        .unwrap_or_else(|| unsupported(&format!("{option} {ms}: must be at least 1000 ms")))
}

fn parse_exchange(spec: &str) -> Option<(u64, String)> {
    let (n, line) = spec.split_once(':')?;
    if line.is_empty() || line.len() >= MAX_LINE || !line.is_ascii() || line.contains('\n') {
        return None;
    }
    Some((n.parse().ok()?, line.to_string()))
}

fn parse_options() -> Options {
    let mut args: VecDeque<String> = std::env::args().skip(1).collect();
    let (mut role, mut addr) = (None, None);
    let (mut no_keepalive, mut interval, mut timeout) = (false, None, None);
    let mut runs = Vec::new();
    let mut max_frame = CRATE_MAX_FRAME;
    while let Some(arg) = args.pop_front() {
        match arg.as_str() {
            "--role" => role = args.pop_front(),
            "--addr" => addr = args.pop_front(),
            "--version" => match number(&arg, args.pop_front()) {
                1 => {}
                2 => unsupported("--version 2: async_smux speaks protocol 1 only (SMUX_VERSION = 1, src/frame.rs:8)"),
                v => unsupported(&format!("--version {v}: protocol versions are 1 and 2")),
            },
            "--no-keepalive" => no_keepalive = true,
            "--keepalive-interval" => interval = Some(number(&arg, args.pop_front())),
            "--keepalive-timeout" => timeout = Some(number(&arg, args.pop_front())),
            "--max-frame-size" => match number(&arg, args.pop_front()) {
                n @ 1..=0xffff => max_frame = n as usize,
                n => unsupported(&format!(
                    "--max-frame-size {n}: a PSH carries 1 to {CRATE_MAX_FRAME} bytes"
                )),
            },
            "--max-receive-buffer" => {
                let n = number(&arg, args.pop_front());
                unsupported(&format!(
                    "--max-receive-buffer {n}: async_smux bounds its receive queue in frames \
                     (max_rx_queue, src/config.rs:33-36), not bytes"
                ))
            }
            // Go uses MaxStreamBuffer only for protocol 2's per-stream window; in
            // protocol 1, the only one this crate speaks, it changes nothing on the wire.
            "--max-stream-buffer" => {
                if number(&arg, args.pop_front()) == 0 {
                    unsupported("--max-stream-buffer 0: must be positive");
                }
            }
            "--run" => match args.pop_front().as_deref().and_then(parse_exchange) {
                Some(exchange) => runs.push(exchange),
                None => unsupported("--run needs N:LINE (rule 20)"),
            },
            other => unsupported(&format!("unknown option {other:?}")),
        }
    }
    let server = match role.as_deref() {
        Some("server") => true,
        Some("client") => false,
        _ => unsupported("--role must be server or client"),
    };
    if server && !runs.is_empty() {
        unsupported("--run is a client option (rule 20)");
    }
    let addr = addr.unwrap_or_else(|| unsupported("missing --addr HOST:PORT"));
    let mut config = MuxConfig {
        stream_id_type: StreamIdType::Odd,
        keep_alive_interval: None,
        keep_alive_timeout: None,
        idle_timeout: None,
        max_tx_queue: NonZeroUsize::new(DEFAULT_RX_QUEUE).expect("non-zero"),
        max_rx_queue: NonZeroUsize::new(DEFAULT_RX_QUEUE).expect("non-zero"),
    };
    if no_keepalive && (interval.is_some() || timeout.is_some()) {
        unsupported("--no-keepalive cannot be combined with keepalive times");
    }
    if let Some(ms) = interval {
        config.keep_alive_interval = Some(whole_seconds("--keepalive-interval", ms));
    }
    if let Some(ms) = timeout {
        if interval.is_none() {
            unsupported("--keepalive-timeout needs --keepalive-interval: the crate has no keepalive by default");
        }
        config.keep_alive_timeout = Some(whole_seconds("--keepalive-timeout", ms));
    }
    Options {
        server,
        addr,
        config,
        max_frame,
        runs,
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// byte[i] = i % 251 for i in offset..offset+len (rule 12).
fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i) % 251) as u8)
        .collect()
}

fn info(config: &MuxConfig, max_frame: usize) -> String {
    let interval = config.keep_alive_interval.map_or(0, NonZeroU64::get);
    // The crate's default timeout is three intervals (src/mux.rs:870-876).
    let timeout = config.keep_alive_timeout.map_or(interval * 3, NonZeroU64::get);
    let rx_frames = config.max_rx_queue.get();
    format!(
        concat!(
            "{{\"implementation\":\"async_smux (crates.io, black-binary/async-smux)\",",
            "\"version\":\"{}\",\"peer\":\"async-smux-peer\",\"protocol_versions\":[1],",
            "\"config\":{{\"version\":1,\"keepalive_disabled\":{},\"keepalive_interval_ms\":{},",
            "\"keepalive_timeout_ms\":{},\"max_frame_size\":{},\"max_receive_buffer\":{},",
            "\"max_rx_queue_frames\":{},\"max_tx_queue_frames\":{}}}}}\n"
        ),
        CRATE_VERSION,
        config.keep_alive_interval.is_none(),
        interval * 1000,
        timeout * 1000,
        max_frame,
        rx_frames * CRATE_MAX_FRAME,
        rx_frames,
        config.max_tx_queue.get(),
    )
}

/// Reads the command line one byte at a time, so that nothing after '\n' is taken.
async fn read_line(stream: &mut Stream) -> Option<String> {
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut one = [0u8; 1];
    while line.len() < MAX_LINE {
        match stream.read(&mut one).await {
            Ok(1) if one[0] == b'\n' => return String::from_utf8(line).ok(),
            Ok(1) if one[0].is_ascii() => line.push(one[0]),
            _ => return None,
        }
    }
    None
}

/// Reads to EOF; returns the count and SHA-256 of what was read.
async fn drain(reader: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut count = 0u64;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok((count, hex(&hash.finalize())));
        }
        hash.update(&buf[..n]);
        count += n as u64;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `data` in calls of at most `max_frame` bytes: the crate sends each call as
/// one PSH (src/mux.rs:670-678), so no PSH is longer.
async fn send(
    writer: &mut (impl AsyncWriteExt + Unpin),
    data: &[u8],
    max_frame: usize,
) -> std::io::Result<()> {
    for piece in data.chunks(max_frame) {
        writer.write_all(piece).await?;
    }
    Ok(())
}

/// Writes n pattern bytes, generated 32 KiB at a time.
async fn write_pattern(
    writer: &mut (impl AsyncWriteExt + Unpin),
    n: u64,
    max_frame: usize,
) -> std::io::Result<()> {
    let mut offset = 0u64;
    while offset < n {
        let piece = pattern(offset, (n - offset).min(32 * 1024) as usize);
        send(writer, &piece, max_frame).await?;
        offset += piece.len() as u64;
    }
    Ok(())
}

/// ECHO: writes back what it reads until EOF.
async fn echo(stream: &mut Stream, max_frame: usize) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        send(stream, &buf[..n], max_frame).await?;
    }
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A HALFCLOSE stream of rule 19: RESULT lets it start reading, then reads its record.
struct HalfClosed {
    start: Arc<Notify>,
    record: watch::Receiver<Option<String>>,
}

/// What the commands of one session share.
#[derive(Clone)]
struct Ctx {
    connector: Arc<Connector>,
    config: MuxConfig,
    max_frame: usize,
    halfclosed: Arc<Mutex<HashMap<u32, HalfClosed>>>,
}

/// Rules 10-18 and 21 on a stream whose command line has been read (or given).
/// Boxed: OPEN runs it again on the streams it opens.
fn run(ctx: Ctx, stream: Stream, line: String) -> Task {
    Box::pin(run_command(ctx, stream, line))
}

async fn run_command(ctx: Ctx, mut stream: Stream, line: String) {
    let id = stream.get_stream_id();
    let max_frame = ctx.max_frame;
    let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
    let result: std::io::Result<()> = match (word, rest) {
        ("ECHO", "") => echo(&mut stream, max_frame).await,
        ("SINK", "") => sink(&mut stream, max_frame).await,
        ("SOURCE", n) => match n.parse::<u64>() {
            Ok(n) => write_pattern(&mut stream, n, max_frame).await,
            Err(_) => Ok(()),
        },
        ("HOLD", ms) => match ms.parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                sink(&mut stream, max_frame).await
            }
            Err(_) => Ok(()),
        },
        ("OPEN", rest) => open(&ctx, &mut stream, rest).await,
        ("HALFCLOSE", "") => {
            half_close(&ctx, stream).await;
            return;
        }
        ("RESULT", rest) => {
            let reply = result(&ctx, rest).await;
            send(&mut stream, reply.as_bytes(), max_frame).await
        }
        ("RUN", spec) => match parse_exchange(spec) {
            Some((n, sub)) => {
                let reply = match exchange(&ctx.connector, n, &sub, max_frame).await {
                    Ok((id, count, sha)) => format!("RAN {id} {count} {sha}\n"),
                    Err(e) => format!("RAN - ERROR {e}\n"),
                };
                send(&mut stream, reply.as_bytes(), max_frame).await
            }
            None => Ok(()),
        },
        ("INFO", "") => {
            let reply = info(&ctx.config, max_frame);
            send(&mut stream, reply.as_bytes(), max_frame).await
        }
        ("EXIT", "") => {
            drop(stream);
            // MuxConnector::close needs &mut self; a clone shares the session.
            let mut connector = (*ctx.connector).clone();
            if let Err(e) = connector.close().await {
                eprintln!("async-smux-peer: EXIT: {e}");
            }
            return;
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        eprintln!("async-smux-peer: stream {id}: {line}: {e}");
    }
    // Dropping is the crate's full close: queued writes, then FIN, and the stream's
    // state is released (src/mux.rs:566-598).
    drop(stream);
}

async fn sink(stream: &mut Stream, max_frame: usize) -> std::io::Result<()> {
    let (count, sha) = drain(stream).await?;
    send(stream, format!("{count} {sha}\n").as_bytes(), max_frame).await
}

/// Rule 19 HALFCLOSE: FIN at once (`shutdown` closes the write direction only and
/// reading goes on), then read nothing until RESULT names this stream, then read to
/// EOF and keep the record.
async fn half_close(ctx: &Ctx, mut stream: Stream) {
    let id = stream.get_stream_id();
    let start = Arc::new(Notify::new());
    let (record_tx, record) = watch::channel(None);
    let entry = HalfClosed {
        start: Arc::clone(&start),
        record,
    };
    ctx.halfclosed.lock().expect("registry").insert(id, entry);
    if let Err(e) = stream.shutdown().await {
        eprintln!("async-smux-peer: stream {id}: HALFCLOSE: {e}");
        return;
    }
    start.notified().await;
    let line = match drain(&mut stream).await {
        Ok((count, sha)) => format!("{count} {sha}\n"),
        Err(e) => {
            eprintln!("async-smux-peer: stream {id}: HALFCLOSE read: {e}");
            return;
        }
    };
    let _ = record_tx.send(Some(line));
}

/// Rule 19 RESULT id ms: the record of HALFCLOSE stream id, or NONE.
async fn result(ctx: &Ctx, rest: &str) -> String {
    let parsed = rest
        .split_once(' ')
        .and_then(|(id, ms)| Some((id.parse::<u32>().ok()?, ms.parse::<u64>().ok()?)));
    let Some((id, ms)) = parsed else {
        return "NONE\n".into();
    };
    let found = ctx
        .halfclosed
        .lock()
        .expect("registry")
        .get(&id)
        .map(|h| (Arc::clone(&h.start), h.record.clone()));
    let Some((start, mut record)) = found else {
        return "NONE\n".into();
    };
    start.notify_one();
    let waited =
        tokio::time::timeout(Duration::from_millis(ms), record.wait_for(Option::is_some)).await;
    match waited {
        Ok(Ok(line)) => line.clone().unwrap_or_else(|| "NONE\n".into()),
        _ => "NONE\n".into(),
    }
}

async fn open(ctx: &Ctx, stream: &mut Stream, rest: &str) -> std::io::Result<()> {
    let Some((k, sub)) = rest.split_once(' ') else {
        return Ok(());
    };
    let Ok(k) = k.parse::<u32>() else {
        return Ok(());
    };
    let mut reply = String::from("OPENED");
    for _ in 0..k {
        let child = ctx.connector.connect().map_err(std::io::Error::other)?;
        reply.push_str(&format!(" {}", child.get_stream_id()));
        tokio::spawn(run(ctx.clone(), child, sub.to_string()));
    }
    reply.push('\n');
    send(stream, reply.as_bytes(), ctx.max_frame).await
}

/// Rule 20's exchange: open a stream, send LINE and n pattern bytes, half-close,
/// read to EOF.  Returns the stream id and the count and SHA-256 of what was read.
async fn exchange(
    connector: &Connector,
    n: u64,
    line: &str,
    max_frame: usize,
) -> std::io::Result<(u32, u64, String)> {
    let stream = connector.connect().map_err(std::io::Error::other)?;
    let id = stream.get_stream_id();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let line = format!("{line}\n");
    let send = async move {
        send(&mut writer, line.as_bytes(), max_frame).await?;
        write_pattern(&mut writer, n, max_frame).await?;
        writer.shutdown().await?;
        Ok::<_, std::io::Error>(writer)
    };
    let (sent, read) = tokio::join!(send, drain(&mut reader));
    sent?;
    let (count, sha) = read?;
    Ok((id, count, sha))
}

/// Accepts the remote's streams until the session ends (rules 6, 8, 9).
async fn serve(ctx: Ctx, mut acceptor: MuxAcceptor<TcpStream>) {
    while let Some(mut stream) = acceptor.accept().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Some(line) = read_line(&mut stream).await {
                run(ctx, stream, line).await;
            }
        });
    }
}

/// One smux session on `conn`: its worker spawned, its context, its acceptor.
fn session(
    conn: TcpStream,
    opts: &Options,
) -> (Ctx, MuxAcceptor<TcpStream>, tokio::task::JoinHandle<()>) {
    let mut config = opts.config;
    config.stream_id_type = if opts.server {
        StreamIdType::Even
    } else {
        StreamIdType::Odd
    };
    let (connector, acceptor, worker) = mux_connection(conn, config);
    let worker = tokio::spawn(async move {
        if let Err(e) = worker.await {
            eprintln!("async-smux-peer: session ended: {e}");
        }
    });
    let ctx = Ctx {
        connector: Arc::new(connector),
        config,
        max_frame: opts.max_frame,
        halfclosed: Arc::default(),
    };
    (ctx, acceptor, worker)
}

async fn server(opts: Options) -> i32 {
    let listener = match TcpListener::bind(&opts.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("async-smux-peer: listen on {}: {e}", opts.addr);
            return 1;
        }
    };
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let local = listener.local_addr().expect("bound address");
    say(&format!("LISTENING {local}"));
    loop {
        tokio::select! {
            _ = term.recv() => return 0,
            accepted = listener.accept() => {
                let Ok((conn, _)) = accepted else { continue };
                let (ctx, acceptor, _worker) = session(conn, &opts);
                tokio::spawn(serve(ctx, acceptor));
            }
        }
    }
}

async fn client(opts: Options) -> i32 {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let conn = match TcpStream::connect(&opts.addr).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("async-smux-peer: dial {}: {e}", opts.addr);
            return 1;
        }
    };
    let (ctx, acceptor, worker) = session(conn, &opts);
    say("CONNECTED");
    tokio::spawn(serve(ctx.clone(), acceptor));
    if !opts.runs.is_empty() {
        let tasks: Vec<_> = opts
            .runs
            .iter()
            .map(|(n, line)| {
                let (connector, n, line) = (Arc::clone(&ctx.connector), *n, line.clone());
                let max_frame = opts.max_frame;
                tokio::spawn(async move { exchange(&connector, n, &line, max_frame).await })
            })
            .collect();
        for task in tasks {
            match task.await {
                Ok(Ok((id, count, sha))) => say(&format!("RAN {id} {count} {sha}")),
                Ok(Err(e)) => say(&format!("RAN - ERROR {e}")),
                Err(e) => say(&format!("RAN - ERROR {e}")),
            }
        }
        say("DONE");
        let _ = (*ctx.connector).clone().close().await;
        return 0;
    }
    // The worker ends when the session does (the remote closed the connection, a
    // protocol error, a keepalive timeout): rule 8.
    tokio::select! {
        _ = term.recv() => { let _ = (*ctx.connector).clone().close().await; }
        _ = worker => {}
    }
    0
}

fn main() {
    let opts = parse_options();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async move {
        if opts.server {
            server(opts).await
        } else {
            client(opts).await
        }
    });
    exit(code);
}
