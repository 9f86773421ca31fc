//! The daemon's lifecycle: one instance per state directory, a secure socket, one graceful
//! shutdown path, and `start`/`stop`/`status` for the command line.
//!
//! [`run`] is the foreground daemon (what systemd and launchd run): it takes the state
//! directory's lock, reads the configuration (and makes the one channel it is published
//! on), opens the store, settles interrupted write-backs ([`crate::operations::recover`]),
//! does the first reconcile, takes the socket ([`crate::socket`]) and
//! runs its background tasks under [`crate::supervisor`]: the live worker, the SIGHUP
//! reload ([`crate::reload`]), the store's keeper ([`crate::store::keep`]: repairs a damaged
//! store, reopens it after a full disk), the signal handler, the watchdog, the desktop
//! notifier ([`crate::notifier`]) and the RPC server. It
//! serves until SIGTERM, SIGINT, the `Shutdown` RPC or a task's failure, then stops
//! accepting, lets in-flight RPCs finish, flushes the store and removes the socket and pid
//! file; a task's failure makes the exit a failure. Shutdown is bounded: what has not
//! stopped [`SHUTDOWN_GRACE`] after it began is left behind, logged, and the process exits
//! with a failure, well within the service manager's stop timeout. [`start`] forks into the background
//! with `daemonize` before any runtime exists and returns once the child answers on its
//! socket (or reports why it could not). `main.rs` calls these.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;

use crate::authority;
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::live::{self, Live};
use crate::notifier::Notifier;
use crate::paths::{Paths, StateFiles};
use crate::rpc::{self, DaemonService, pb};
use crate::socket::{self, SocketError, SocketOwner, private_dir};
use crate::store::Store;
use crate::supervisor::{TaskFailed, Tasks};

/// How long `start` waits for the background daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `stop` waits for the daemon to release its lock (systemd's `TimeoutStopSec`).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the tasks have to end once shutdown began, before the daemon exits without
/// them: well inside [`STOP_TIMEOUT`], so a stop never needs `SIGKILL`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long, after the tasks, the runtime waits for work left on its blocking threads
/// (a read that never returns) before the process exits without it.
const RUNTIME_GRACE: Duration = Duration::from_secs(1);

/// Why the daemon could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another skillmeatd{} already runs for state directory {}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), state_dir.display())]
    AlreadyRunning {
        state_dir: PathBuf,
        pid: Option<u32>,
    },
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    #[error("serving gRPC: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Task(#[from] TaskFailed),
    #[error("the background daemon failed to start: {0}")]
    StartFailed(String),
    #[error("the daemon did not stop within {}s", STOP_TIMEOUT.as_secs())]
    StopTimeout,
    #[error("no daemon answers on {}", socket.display())]
    NotRunning { socket: PathBuf },
    #[error("daemon answered with an error: {0}")]
    Rpc(#[from] tonic::Status),
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> DaemonError + 'a {
    move |source| DaemonError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The exclusive lock that makes a daemon the only one of its state directory. Released
/// when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the lock of `paths.state_dir`, creating the folder (0700) if needed.
    ///
    /// # Errors
    /// Another process holds it ([`DaemonError::AlreadyRunning`]), or the folder cannot be
    /// created.
    pub fn acquire(paths: &Paths) -> Result<InstanceLock, DaemonError> {
        private_dir(&paths.state_dir)?;
        let path = paths.lock_file();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "open"))?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(DaemonError::AlreadyRunning {
                state_dir: paths.state_dir.clone(),
                pid: read_pid(paths),
            }),
            Err(fs::TryLockError::Error(e)) => Err(io_err(&path, "lock")(e)),
        }
    }
}

/// The pid recorded by the running daemon, if any.
pub fn read_pid(paths: &Paths) -> Option<u32> {
    fs::read_to_string(paths.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets in-flight RPCs
/// finish.
///
/// # Errors
/// The server failed.
pub async fn serve(
    live: Arc<Live>,
    notifier: Arc<Notifier>,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let service = DaemonService::new(live, notifier, shutdown.clone());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::skillmeat_daemon_server::SkillmeatDaemonServer<DaemonService>>()
        .await;
    // Reflection in both versions: grpcurl and grpc-go use v1, grpcio's Python client and
    // older tools only v1alpha. The health service is described too. Each is built on its
    // first call (see `rpc::lazy`).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = rpc::Lazy::new(move || reflection().build_v1().map_err(|e| e.to_string()));
    let reflection_v1alpha =
        rpc::Lazy::new(move || reflection().build_v1alpha().map_err(|e| e.to_string()));
    // Every connection goes through the authority layer, so clients that send the socket
    // path as `:authority` are served; the server's limits are the ones the layer enforces.
    let incoming = UnixListenerStream::new(listener).map(|c| c.map(authority::Connection::new));
    tonic::transport::Server::builder()
        .max_frame_size(authority::MAX_FRAME_SIZE)
        .http2_max_header_list_size(authority::MAX_HEADER_LIST_SIZE)
        .layer(tower::util::MapResponseLayer::new(rpc::name_version))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            pb::skillmeat_daemon_server::SkillmeatDaemonServer::with_interceptor(
                service,
                rpc::check_peer,
            ),
        )
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
        .await?;
    Ok(())
}

/// Runs the daemon in the foreground until it is asked to stop. `ready` (used by
/// [`start`]) receives `ready` once the socket answers, or the error that stopped it.
///
/// # Errors
/// Any start-up failure; the store flush on the way out.
pub fn run(paths: &Paths, ready: Option<io::PipeWriter>) -> Result<(), DaemonError> {
    let mut ready = ready;
    let result = run_inner(paths, &mut ready);
    if let (Err(e), Some(w)) = (&result, ready.as_mut()) {
        let _ = writeln!(w, "{e}");
    }
    result
}

fn store_damaged(store: &Store) -> bool {
    store.condition().0 == crate::store::Condition::Damaged
}

fn run_inner(paths: &Paths, ready: &mut Option<io::PipeWriter>) -> Result<(), DaemonError> {
    crate::heap::tune();
    let begun = std::time::Instant::now();
    let _lock = InstanceLock::acquire(paths)?;
    let loaded = Config::load(&paths.skillmeat_home)?;
    let store = Store::open_with(
        &paths.store_dir(),
        &crate::store::Options::from(&loaded.store),
    )?;
    let (config, config_rx) = config::channel(loaded);
    let history = crate::history::History::open(&store, paths.skillmeat_home.clone())
        .map_err(|e| DaemonError::StartFailed(e.to_string()))?;
    let engine = Arc::new(Engine::new(paths.clone(), store, history, config_rx));
    tracing::debug!(
        elapsed_ms = begun.elapsed().as_millis() as u64,
        "store and history open"
    );
    // A store found damaged is repaired now, before the recovery below needs its log
    // (damage found later is repaired by the keeper while the daemon serves).
    if store_damaged(engine.store()) {
        engine.store().tend();
    }
    // Interrupted write-backs are finished or put back before anything reads the files.
    match crate::operations::recover(&engine) {
        Ok(r) if !r.unsettled.is_empty() => {
            tracing::error!(unsettled = ?r.unsettled, "some interrupted writes wait for the next start");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "recovering interrupted operations failed"),
    }
    tracing::debug!(
        elapsed_ms = begun.elapsed().as_millis() as u64,
        "interrupted writes settled"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skillmeatd")
        .build()
        .map_err(io_err(&paths.state_dir, "start the runtime"))?;
    let result = runtime.block_on(async {
        // Signals first: from here on SIGTERM/SIGINT take the graceful path.
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        tasks.spawn("signal", stop_signals(shutdown.clone())?);
        // The keeper first: a damaged store is repaired while the first scan runs.
        tasks.spawn(
            "store keeper",
            crate::store::keep(engine.store().clone(), shutdown.clone()),
        );
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| DaemonError::StartFailed(format!("SIGHUP handler: {e}")))?;
        let (live, task) = live::new(Arc::clone(&engine));
        // Subscribed before the first scan, so changes made while stopped are told too.
        let (notifier, notifications) = Notifier::new(Arc::clone(&live), shutdown.clone())
            .map_err(|e| DaemonError::StartFailed(format!("desktop notifications: {e}")))?;
        let started = std::time::Instant::now();
        let running = task.start().await?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "initial scan done"
        );
        let (listener, socket_owner) = socket::listener(&paths.socket)?;
        let pid_file = paths.pid_file();
        fs::write(&pid_file, format!("{}\n", std::process::id()))
            .map_err(io_err(&pid_file, "write"))?;
        tasks.spawn("live worker", live::run(running, shutdown.clone()));
        tasks.spawn("desktop notifications", notifications);
        tasks.spawn(
            "configuration reload",
            crate::reload::run(
                paths.skillmeat_home.clone(),
                config,
                hangups,
                shutdown.clone(),
            ),
        );
        tracing::info!(
            socket = %paths.socket.display(),
            home = %paths.skillmeat_home.display(),
            version = env!("CARGO_PKG_VERSION"),
            "skillmeatd serving"
        );
        if let Some(mut w) = ready.take() {
            let _ = w.write_all(b"ready\n");
        }
        crate::service::announce_ready(&paths.socket);
        tasks.spawn("watchdog", crate::service::watchdog(shutdown.clone()));
        tasks.spawn(
            "RPC server",
            serve(live, notifier, listener, shutdown.clone()),
        );
        // Until SIGTERM, SIGINT, the Shutdown RPC, or a task's failure.
        let ended = tasks.wait(SHUTDOWN_GRACE).await;
        crate::service::announce_stopping();
        tracing::info!("shutting down: flushing the store");
        let flushed = engine.flush();
        if socket_owner == SocketOwner::Daemon {
            let _ = fs::remove_file(&paths.socket);
        }
        let _ = fs::remove_file(&pid_file);
        ended?;
        flushed.map_err(|e| DaemonError::StartFailed(e.to_string()))?;
        tracing::info!("stopped cleanly");
        Ok(())
    });
    // Dropping the runtime would wait for every blocking thread, however long it is stuck.
    runtime.shutdown_timeout(RUNTIME_GRACE);
    result
}

/// Installs the SIGTERM and SIGINT handlers; the returned task cancels `shutdown` when
/// either arrives.
fn stop_signals(
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = ()>, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| DaemonError::StartFailed(format!("SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| DaemonError::StartFailed(format!("SIGINT handler: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    })
}

/// What [`start`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A daemon was already answering.
    AlreadyRunning,
    /// A new daemon was started and answers.
    Started,
}

/// Starts the daemon in the background and returns once it answers. `init_child` runs in
/// the detached child before the daemon (set up logging there).
///
/// # Errors
/// The fork failed, or the child reported an error or did not answer in time.
pub fn start(paths: &Paths, init_child: impl FnOnce()) -> Result<Started, DaemonError> {
    if answers(&paths.socket) {
        return Ok(Started::AlreadyRunning);
    }
    private_dir(&paths.state_dir)?;
    let log_path = paths.log_file();
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_err(&log_path, "open"))?;
    let log2 = log.try_clone().map_err(io_err(&log_path, "open"))?;
    let (mut reader, writer) = io::pipe().map_err(io_err(&paths.state_dir, "create a pipe"))?;
    let outcome = daemonize::Daemonize::new()
        .working_directory("/")
        .umask(0o077)
        .stdout(log)
        .stderr(log2)
        .execute();
    match outcome {
        daemonize::Outcome::Child(Ok(_)) => {
            drop(reader);
            init_child();
            let code = match run(paths, Some(writer)) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("{e}");
                    1
                }
            };
            std::process::exit(code);
        }
        daemonize::Outcome::Child(Err(e)) => {
            let mut writer = writer;
            let _ = writeln!(writer, "detaching failed: {e}");
            std::process::exit(1);
        }
        daemonize::Outcome::Parent(Err(e)) => Err(DaemonError::StartFailed(e.to_string())),
        daemonize::Outcome::Parent(Ok(_)) => {
            drop(writer);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = reader.read_to_string(&mut s);
                let _ = tx.send(s);
            });
            let said = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
                DaemonError::StartFailed(format!(
                    "no answer within {}s; see {}",
                    START_TIMEOUT.as_secs(),
                    log_path.display()
                ))
            })?;
            if said.starts_with("ready") {
                Ok(Started::Started)
            } else if said.trim().is_empty() {
                Err(DaemonError::StartFailed(format!(
                    "it exited without a word; see {}",
                    log_path.display()
                )))
            } else {
                Err(DaemonError::StartFailed(said.trim().to_string()))
            }
        }
    }
}

/// Whether something accepts connections on `socket`.
pub fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// A short-lived runtime for the command-line client calls.
fn client_runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonError::StartFailed(e.to_string()))
}

/// Asks the daemon to stop and waits until it released its lock.
///
/// # Errors
/// No daemon answers, it refused, or it did not stop in time.
pub fn stop(paths: &Paths) -> Result<(), DaemonError> {
    client_runtime()?.block_on(async {
        let channel =
            crate::connect::channel(&paths.socket)
                .await
                .map_err(|_| DaemonError::NotRunning {
                    socket: paths.socket.clone(),
                })?;
        pb::skillmeat_daemon_client::SkillmeatDaemonClient::new(channel)
            .shutdown(pb::ShutdownRequest {})
            .await?;
        Ok::<_, DaemonError>(())
    })?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        match InstanceLock::acquire(paths) {
            Ok(_) => return Ok(()),
            Err(DaemonError::AlreadyRunning { .. }) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    }
    Err(DaemonError::StopTimeout)
}

/// The running daemon's status.
///
/// # Errors
/// No daemon answers, or it answered with an error.
pub fn status(paths: &Paths) -> Result<pb::StatusResponse, DaemonError> {
    client_runtime()?.block_on(async {
        let channel =
            crate::connect::channel(&paths.socket)
                .await
                .map_err(|_| DaemonError::NotRunning {
                    socket: paths.socket.clone(),
                })?;
        Ok(
            pb::skillmeat_daemon_client::SkillmeatDaemonClient::new(channel)
                .status(pb::StatusRequest { stale_ok: false })
                .await?
                .into_inner(),
        )
    })
}
