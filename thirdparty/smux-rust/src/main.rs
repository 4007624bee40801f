//! smux-rust-peer: the smuxref contract (conformance/CONTRACT.md) on the crates.io
//! `smux_rust` crate (hushuoyouli/smux_rust, a port of xtaci/smux), through its public
//! API only: `client`/`server`, `Session` (`open_stream`, `accept_stream`, `close`),
//! `Stream` (`read`, `write_all`, `close`, `id`) and `Config`.
//!
//! The shim never repairs what the library puts on the wire: whatever the crate does is
//! what the suite judges.  Gaps (see README.md) are reported, not patched.

use std::collections::VecDeque;
use std::io::{ErrorKind, Write as _};
use std::process::exit;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use smux_rust::{Config, Session, Stream};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

/// Exit status for an option or value the peer does not support (rule 3).
const UNSUPPORTED: i32 = 127;
/// Longest command line, its '\n' included (rule 9).
const MAX_LINE: usize = 256;
const CRATE_VERSION: &str = env!("SMUX_RUST_CRATE_VERSION");
/// Why this peer answers HALFCLOSE with UNSUPPORTED and refuses exchanges (rules 19-22).
const NO_HALF_CLOSE: &str = "smux_rust has no half-close: Stream::close sets the stream dead, \
                             sends FIN and forgets the stream (src/stream.rs:716-736)";

fn unsupported(reason: &str) -> ! {
    eprintln!("smux-rust-peer: unsupported: {reason}");
    exit(UNSUPPORTED);
}

fn number(option: &str, value: Option<String>) -> u64 {
    match value.as_deref().map(str::parse::<u64>) {
        Some(Ok(n)) => n,
        _ => unsupported(&format!("{option} needs a non-negative decimal number")),
    }
}

/// A keepalive time in milliseconds as the crate can honour it: its keepalive task
/// sleeps `as_secs()` of each duration (src/session.rs:653, :664-666), so anything but
/// whole seconds would silently become another value.
fn whole_seconds(option: &str, ms: u64) -> Duration {
    if ms == 0 || ms % 1000 != 0 {
        unsupported(&format!(
            "{option} {ms}: smux_rust's keepalive counts whole seconds (src/session.rs:653)"
        ));
    }
    Duration::from_millis(ms)
}

struct Options {
    server: bool,
    addr: String,
    config: Config,
}

fn parse_options() -> Options {
    let mut args: VecDeque<String> = std::env::args().skip(1).collect();
    let (mut role, mut addr) = (None, None);
    let mut config = Config::default();
    let (mut no_keepalive, mut interval, mut timeout) = (false, None, None);
    while let Some(arg) = args.pop_front() {
        match arg.as_str() {
            "--role" => role = args.pop_front(),
            "--addr" => addr = args.pop_front(),
            "--version" => match number(&arg, args.pop_front()) {
                v @ (1 | 2) => config.version = v as u8,
                v => unsupported(&format!("--version {v}: protocol versions are 1 and 2")),
            },
            "--no-keepalive" => no_keepalive = true,
            "--keepalive-interval" => interval = Some(number(&arg, args.pop_front())),
            "--keepalive-timeout" => timeout = Some(number(&arg, args.pop_front())),
            "--max-frame-size" => config.max_frame_size = number(&arg, args.pop_front()) as usize,
            "--max-receive-buffer" => {
                config.max_receive_buffer = number(&arg, args.pop_front()) as usize
            }
            "--max-stream-buffer" => {
                config.max_stream_buffer = number(&arg, args.pop_front()) as usize
            }
            "--run" => unsupported(&format!("--run (rules 20-22): {NO_HALF_CLOSE}")),
            other => unsupported(&format!("unknown option {other:?}")),
        }
    }
    let server = match role.as_deref() {
        Some("server") => true,
        Some("client") => false,
        _ => unsupported("--role must be server or client"),
    };
    let addr = addr.unwrap_or_else(|| unsupported("missing --addr HOST:PORT"));
    if no_keepalive {
        if interval.is_some() || timeout.is_some() {
            unsupported("--no-keepalive cannot be combined with keepalive times");
        }
        config.keep_alive_disabled = true;
    }
    if let Some(ms) = interval {
        config.keep_alive_interval = whole_seconds("--keepalive-interval", ms);
    }
    if let Some(ms) = timeout {
        config.keep_alive_timeout = whole_seconds("--keepalive-timeout", ms);
    }
    // Session::new refuses what Config::verify refuses (src/session.rs:90); that is a
    // configuration the crate cannot honour, which rule 3 makes "unsupported".
    if let Err(e) = config.verify() {
        unsupported(&format!("smux_rust::Config::verify refused it: {e}"));
    }
    Options {
        server,
        addr,
        config,
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

fn info(config: &Config) -> String {
    format!(
        concat!(
            "{{\"implementation\":\"smux_rust (crates.io, hushuoyouli/smux_rust)\",",
            "\"version\":\"{}\",\"peer\":\"smux-rust-peer\",\"protocol_versions\":[1,2],",
            "\"config\":{{\"version\":{},\"keepalive_disabled\":{},",
            "\"keepalive_interval_ms\":{},\"keepalive_timeout_ms\":{},",
            "\"max_frame_size\":{},\"max_receive_buffer\":{},\"max_stream_buffer\":{}}}}}\n"
        ),
        CRATE_VERSION,
        config.version,
        config.keep_alive_disabled,
        config.keep_alive_interval.as_millis(),
        config.keep_alive_timeout.as_millis(),
        config.max_frame_size,
        config.max_receive_buffer,
        config.max_stream_buffer,
    )
}

/// One read as the crate reports it: `Ok(0)` is the end of the stream.  The crate ends
/// a read with `UnexpectedEof` once the remote's FIN (or its own close) has come and the
/// buffer is empty (src/stream.rs:402-404, :483-488); its own `copy_to` takes that as
/// the end of the stream (src/stream.rs:132-135), and so does the shim.
async fn read_some(stream: &Stream, buf: &mut [u8]) -> std::io::Result<usize> {
    match stream.read(buf).await {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

/// Reads the command line one byte at a time, so that nothing after '\n' is taken.
async fn read_line(stream: &Stream) -> Option<String> {
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut one = [0u8; 1];
    while line.len() < MAX_LINE {
        match read_some(stream, &mut one).await {
            Ok(1) if one[0] == b'\n' => return String::from_utf8(line).ok(),
            Ok(1) if one[0].is_ascii() => line.push(one[0]),
            _ => return None,
        }
    }
    None
}

/// Reads to EOF; returns the count and SHA-256 of what was read.
async fn drain(stream: &Stream) -> std::io::Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut count = 0u64;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = read_some(stream, &mut buf).await?;
        if n == 0 {
            let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
            return Ok((count, digest));
        }
        hash.update(&buf[..n]);
        count += n as u64;
    }
}

async fn write_pattern(stream: &Stream, n: u64) -> std::io::Result<()> {
    let mut offset = 0u64;
    while offset < n {
        let piece = pattern(offset, (n - offset).min(32 * 1024) as usize);
        stream.write_all(&piece).await?;
        offset += piece.len() as u64;
    }
    Ok(())
}

async fn echo(stream: &Stream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = read_some(stream, &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn sink(stream: &Stream) -> std::io::Result<()> {
    let (count, sha) = drain(stream).await?;
    stream.write_all(format!("{count} {sha}\n").as_bytes()).await
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Rules 10-18 and 21 on a stream whose command line has been read (or given).
/// Boxed: OPEN runs it again on the streams it opens.
fn run(session: Arc<Session>, config: Config, stream: Stream, line: String) -> Task {
    Box::pin(run_command(session, config, stream, line))
}

async fn run_command(session: Arc<Session>, config: Config, stream: Stream, line: String) {
    let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
    let result: std::io::Result<()> = match (word, rest) {
        ("ECHO", "") => echo(&stream).await,
        ("SINK", "") => sink(&stream).await,
        ("SOURCE", n) => match n.parse::<u64>() {
            Ok(n) => write_pattern(&stream, n).await,
            Err(_) => Ok(()),
        },
        ("HOLD", ms) => match ms.parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                sink(&stream).await
            }
            Err(_) => Ok(()),
        },
        ("OPEN", rest) => open(&session, &config, &stream, rest).await,
        ("HALFCLOSE", "") => {
            eprintln!("smux-rust-peer: HALFCLOSE: {NO_HALF_CLOSE}");
            stream.write_all(b"UNSUPPORTED\n").await
        }
        // No stream is ever half-closed here, so no RESULT has a record (rule 19).
        ("RESULT", _) => stream.write_all(b"NONE\n").await,
        ("RUN", _) => {
            let reply = format!("RAN - ERROR {NO_HALF_CLOSE}\n");
            stream.write_all(reply.as_bytes()).await
        }
        ("INFO", "") => stream.write_all(info(&config).as_bytes()).await,
        ("EXIT", "") => {
            // Session::close closes every stream (FIN each) and marks the session dead;
            // it does not close the connection (src/session.rs:250-262).
            let _ = session.close().await;
            return;
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        eprintln!("smux-rust-peer: stream {}: {line}: {e}", stream.id());
    }
    let _ = stream.close().await;
}

/// Rule 14: open k streams, start LINE on each, then write OPENED with their ids.
async fn open(
    session: &Arc<Session>,
    config: &Config,
    stream: &Stream,
    rest: &str,
) -> std::io::Result<()> {
    let Some((k, sub)) = rest.split_once(' ') else {
        return Ok(());
    };
    let Ok(k) = k.parse::<u32>() else {
        return Ok(());
    };
    let mut reply = String::from("OPENED");
    for _ in 0..k {
        let child = session
            .open_stream()
            .await
            .map_err(std::io::Error::other)?;
        reply.push_str(&format!(" {}", child.id()));
        tokio::spawn(run(Arc::clone(session), config.clone(), child, sub.to_string()));
    }
    reply.push('\n');
    stream.write_all(reply.as_bytes()).await
}

/// Accepts the remote's streams until the session ends (rules 6, 8, 9).
async fn serve(session: Arc<Session>, config: Config) {
    while let Ok(stream) = session.accept_stream().await {
        let (session, config) = (Arc::clone(&session), config.clone());
        tokio::spawn(async move {
            match read_line(&stream).await {
                Some(line) => run(session, config, stream, line).await,
                None => {
                    let _ = stream.close().await;
                }
            }
        });
    }
}

async fn server(opts: Options) -> i32 {
    let listener = match TcpListener::bind(&opts.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("smux-rust-peer: listen on {}: {e}", opts.addr);
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
                let config = opts.config.clone();
                tokio::spawn(async move {
                    match smux_rust::server(Box::new(conn), Some(config.clone())).await {
                        Ok(session) => serve(session, config).await,
                        Err(e) => eprintln!("smux-rust-peer: server session: {e}"),
                    }
                });
            }
        }
    }
}

async fn client(opts: Options) -> i32 {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let conn = match TcpStream::connect(&opts.addr).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smux-rust-peer: dial {}: {e}", opts.addr);
            return 1;
        }
    };
    let session = match smux_rust::client(Box::new(conn), Some(opts.config.clone())).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smux-rust-peer: client session: {e}");
            return 1;
        }
    };
    say("CONNECTED");
    tokio::select! {
        _ = term.recv() => { let _ = session.close().await; }
        _ = serve(Arc::clone(&session), opts.config.clone()) => {}
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
