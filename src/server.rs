//! The service: samples on a timer, answers the control socket, publishes.
//!
//! Data flows one way: the sampler builds a tree each cycle and swaps it into
//! `latest`; the control thread answers from whatever tree is latest (it never
//! waits on a sample in progress), reusing the tree's JSON made once a cycle
//! (`cache`); the publisher thread sends the snapshot the sampler encoded. Each ZeroMQ socket lives on its own thread, and the
//! sampler hands snapshots over through a bounded queue it never waits on.
//!
//! Process starts and exits go out as `process_event` notifications before
//! the snapshot of the cycle that noticed them; an exit signalled by a pidfd
//! between cycles goes out at once, and so does the start of a matched
//! process whose `exec` the kernel reports, without waiting for the next
//! cycle. Such an event carries the id of the next snapshot, the first to
//! be sampled after it: that snapshot shows the process, unless it has
//! ended by then, and then its `exited` event, with the same id, comes first.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use crate::cache::CachedTree;
use crate::command::{Command, Context};
use crate::config::{Config, Encoding, Live, Sources};
use crate::metrics;
use crate::monitor::{Counters, Telemetry};
use crate::protocol::{decode_request, nack, Malformed, Message, MsgType};
use crate::sample::{present_interfaces, Sampler};
use crate::settings::Settings;
use crate::snapshot::ProcessEvent;
use crate::thresholds::{Alarm, Evaluator};
use crate::transport::{self, ControlSocket, Incoming, Publisher, TransportError};
use crate::tree::Node;

/// How often the socket threads look up from waiting to check for shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often the publisher thread takes in subscriptions when it has nothing
/// to send: libzmq only takes them in when its socket is used.
const TEND_INTERVAL: Duration = Duration::from_millis(20);

/// Encoded snapshots waiting for the publisher thread; beyond this the newest is dropped.
const PUBLISH_QUEUE: usize = 2;

/// Notifications (events, alarms) waiting for the publisher thread. They are
/// rare and each tells something once, so they get far more room than snapshots.
const NOTIFY_QUEUE: usize = 1024;

/// Runs until SIGINT or SIGTERM. Binding errors are returned before anything
/// runs. `sources` are the options as given, re-read on SIGHUP.
pub fn run(config: Config, sources: Sources) -> Result<(), TransportError> {
    let live = Live::new(&config, present_interfaces);
    let settings = Arc::new(Settings::new(&config, live.clone()));
    // Dropped last, on every way out of here (errors and panics included):
    // the ipc files go only once the sockets are closed.
    let mut claims = Vec::new();
    let ctx = transport::Context::new();
    let (control, claim) = ControlSocket::bind(
        &ctx,
        &config.ctrl_endpoint,
        config.max_message_size,
        config.ipc_mode,
    )?;
    claims.extend(claim);
    let (publisher, claim) = Publisher::bind(&ctx, &config.pub_endpoint, config.ipc_mode)?;
    claims.extend(claim);
    // The claims' guards remove the ipc files if this fails.
    let metrics = config.metrics.map(metrics::http::bind).transpose()?;
    // The metrics address is checked by the same rule as a tcp endpoint.
    let metrics_endpoint = config.metrics.map(|a| format!("tcp://{a}"));
    for endpoint in [&config.ctrl_endpoint, &config.pub_endpoint]
        .into_iter()
        .chain(metrics_endpoint.as_ref())
    {
        if transport::reachable_from_network(endpoint) {
            tracing::warn!(
                "{endpoint} is not a loopback address: the status tree becomes readable by the network"
            );
        }
    }
    if live.allow_configure {
        tracing::info!("configure requests may change what is monitored");
    }
    tracing::info!("{}", live.describe());
    tracing::info!(
        "serving control on {} and status on {} ({}), {} Hz",
        config.ctrl_endpoint,
        config.pub_endpoint,
        config.pub_encoding.as_str(),
        live.rate
    );

    let mut cycles = Cycles {
        sampler: Sampler::new(&live.disks, &live.interfaces, &live.processes),
        evaluator: Evaluator::new(live.thresholds.clone()),
        telemetry: Telemetry::new(live.interval()),
    };
    // The first cycle notices no events: what runs now was not seen starting.
    let (first, alarms, _) = cycles.next(1);
    let latest = Arc::new(RwLock::new(Arc::new(CachedTree::new(first))));
    let stop = Arc::new(AtomicBool::new(false));

    let control_thread = {
        let latest = Arc::clone(&latest);
        let stop = Arc::clone(&stop);
        let settings = Arc::clone(&settings);
        let counters = cycles.telemetry.counters();
        thread::Builder::new()
            .name("control".into())
            .spawn(move || serve_control(control, latest, settings, stop, counters))
    };
    let (outbox, inbox) = Outbox::new(config.pub_encoding);
    let publish_thread = {
        let counters = cycles.telemetry.counters();
        thread::Builder::new()
            .name("publish".into())
            .spawn(move || serve_publish(publisher, inbox, counters))
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build();
    let scrapes = metrics.map(|listener| {
        let source = metrics::http::Source {
            latest: Arc::clone(&latest),
            settings: Arc::clone(&settings),
        };
        if let Some(address) = config.metrics {
            tracing::info!("serving metrics on http://{address}/metrics");
        }
        metrics::http::serve(listener, source)
    });
    let result = match runtime {
        Ok(runtime) => runtime.block_on(async {
            // Scrapes are served between cycles on this same runtime.
            if let Some(scrapes) = scrapes {
                tokio::spawn(scrapes);
            }
            sample_until_signal(cycles, alarms, &latest, outbox, &settings, &sources).await
        }),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!("cannot run the sampling loop: {e}");
    }

    stop.store(true, Ordering::Relaxed);
    for handle in [control_thread, publish_thread] {
        match handle {
            Ok(h) => {
                if h.join().is_err() {
                    tracing::error!("a socket thread panicked");
                }
            }
            Err(e) => tracing::error!("cannot start a socket thread: {e}"),
        }
    }
    drop(ctx);
    drop(claims);
    tracing::info!("stopped");
    Ok(())
}

/// What makes one cycle's tree: the samples, the limits on them, and the
/// monitor's account of its own work.
struct Cycles {
    sampler: Sampler,
    evaluator: Evaluator,
    telemetry: Telemetry,
}

impl Cycles {
    /// Cycle `cycle`'s tree, with the severity changes and process events it
    /// noticed. The `monitor` block goes on last, timing all the rest.
    fn next(&mut self, cycle: u32) -> (Node, Vec<Alarm>, Vec<ProcessEvent>) {
        let started = Instant::now();
        let mut snapshot = self.sampler.sample();
        let events = std::mem::take(&mut snapshot.events);
        let mut tree = snapshot.to_tree();
        let alarms = self.evaluator.apply(&mut tree);
        self.telemetry.record_cycle(started.elapsed());
        let monitor = self.telemetry.monitor(cycle, &self.sampler);
        tree.insert("monitor", monitor.to_node());
        (tree, alarms, events)
    }

    /// `reset_statistics`, before the next cycle is sampled.
    fn reset_statistics(&mut self) {
        self.sampler.reset_statistics();
        self.telemetry.reset_max();
    }

    /// From the next cycle on, samples and judges what `live` says.
    fn reconfigure(&mut self, live: &Live) {
        self.sampler
            .reconfigure(&live.disks, &live.interfaces, &live.processes);
        self.evaluator.set_limits(live.thresholds.clone());
        self.telemetry.set_interval(live.interval());
    }
}

/// A timer ticking every `period`, first at `start`.
fn ticker(start: tokio::time::Instant, period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// Samples every interval and hands each snapshot on, until SIGINT or SIGTERM.
/// A configuration change (configure, SIGHUP) applies from the next cycle;
/// a new rate re-times the next cycle at once, counted from the last one.
async fn sample_until_signal(
    mut cycles: Cycles,
    mut alarms: Vec<Alarm>,
    latest: &RwLock<Arc<CachedTree>>,
    outbox: Outbox,
    settings: &Settings,
    sources: &Sources,
) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // Handled from here on: any that came while starting is delivered now.
    release_signals();
    let mut trimmer = crate::memory::Trimmer::default();
    let exits = watch(cycles.sampler.exit_fd(), "process exits");
    let starts = watch(cycles.sampler.events_fd().map(Arc::new), "process starts");
    let mut changes = settings.subscribe();
    let mut watching = true;
    let mut rate = settings.live().rate;
    let mut last_tick = tokio::time::Instant::now();
    // The first tick fires at once: the tree sampled at start is published as cycle 1.
    let mut ticks = ticker(last_tick, settings.live().interval());
    let mut cycle: u32 = 0;
    let mut tree = Arc::clone(&*latest.read().unwrap_or_else(|p| p.into_inner()));
    let mut stopping = false;
    loop {
        tokio::select! {
            at = ticks.tick() => last_tick = at,
            // A matched process that has just `exec`ed is told at once; not
            // before cycle 1 is out, as the tree of cycle 1 was sampled earlier.
            () = ready(starts.as_ref(), "process starts"), if cycle > 0 => {
                let events = cycles.sampler.starts_now();
                if publish_events(&outbox, next_cycle(cycle), &events).is_err() {
                    break;
                }
                continue;
            }
            () = ready(exits.as_ref(), "process exits") => {
                // Told now; the next snapshot is the first to show it.
                let events = cycles.sampler.reap_exits();
                if publish_events(&outbox, next_cycle(cycle), &events).is_err() {
                    break;
                }
                continue;
            }
            changed = changes.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let live = Arc::clone(&changes.borrow_and_update());
                tracing::info!("{}", live.describe());
                cycles.reconfigure(&live);
                if live.rate != rate {
                    rate = live.rate;
                    let period = live.interval();
                    ticks = ticker(last_tick + period, period);
                }
                continue;
            }
            _ = hangup.recv() => {
                crate::logging::reopen();
                reload(settings, sources);
                continue;
            }
            _ = interrupt.recv() => stopping = true,
            _ = terminate.recv() => stopping = true,
        }
        // A last fresh snapshot goes out on the way down, so a subscriber sees
        // the state at shutdown.
        let next = next_cycle(cycle);
        if settings.take_reset() {
            cycles.reset_statistics();
        }
        if cycle > 0 {
            let (fresh, raised, events) = cycles.next(next);
            if publish_events(&outbox, next, &events).is_err() {
                break;
            }
            tree = Arc::new(CachedTree::new(fresh));
            alarms = raised;
            *latest.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&tree);
        }
        cycle = next;
        trimmer.maybe_trim();
        // Severity changes go out just before the snapshot that shows them.
        let mut gone = alarms
            .drain(..)
            .any(|alarm| outbox.notify("alarm", cycle, &alarm).is_err());
        gone = gone || outbox.snapshot(cycle, tree.as_ref()).is_err();
        if gone || stopping {
            break;
        }
    }
    Ok(())
}

/// The signals the sampling loop handles.
const HELD_SIGNALS: [i32; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// Blocks SIGHUP, SIGINT and SIGTERM in the calling thread and in every
/// thread it starts from now on, so one that arrives while the service starts
/// stays pending (instead of killing it) until [`release_signals`]. Call it
/// first in `serve`, before any thread exists.
pub fn hold_signals() {
    set_signal_mask(libc::SIG_BLOCK);
}

/// Unblocks them in the sampling loop's thread, once their handlers are in
/// place; a pending one is delivered then, exactly once.
fn release_signals() {
    set_signal_mask(libc::SIG_UNBLOCK);
}

fn set_signal_mask(how: libc::c_int) {
    // SAFETY: the set is initialised by sigemptyset before use, and
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in HELD_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Cycle numbers run 1, 2, ..., 4294967295, 1, ...
fn next_cycle(cycle: u32) -> u32 {
    cycle.wrapping_add(1).max(1)
}

/// Queues each event as a `process_event` notification with the given id.
fn publish_events(
    outbox: &Outbox,
    cycle: u32,
    events: &[ProcessEvent],
) -> Result<(), PublisherGone> {
    for event in events {
        outbox.notify(ProcessEvent::MSG_VAL, cycle, event.params())?;
    }
    Ok(())
}

/// A descriptor of the sampler's (exit watch, event socket) registered with
/// the runtime, if there is one; `what` names what it tells of.
fn watch(fd: Option<Arc<OwnedFd>>, what: &str) -> Option<AsyncFd<Arc<OwnedFd>>> {
    let fd = fd?;
    // SAFETY: the AsyncFd owns one `Arc` of the `OwnedFd`, so the descriptor
    // stays open, and is the same one, for as long as the AsyncFd lives.
    let registered = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
    match registered {
        Ok(watch) => Some(watch),
        Err(e) => {
            tracing::warn!("cannot wait for {what} ({e}); they are seen once per cycle");
            None
        }
    }
}

/// Resolves when the watched descriptor is readable; never without a watch.
async fn ready(watch: Option<&AsyncFd<Arc<OwnedFd>>>, what: &str) {
    let Some(watch) = watch else {
        return std::future::pending().await;
    };
    match watch.readable().await {
        // Cleared before what waits is read, so a later arrival wakes us again.
        Ok(mut ready) => ready.clear_ready(),
        Err(e) => {
            tracing::warn!("cannot wait for {what} ({e}); they are seen once per cycle");
            std::future::pending().await
        }
    }
}

/// SIGHUP: the configuration becomes what a restart with the same command
/// line would give (file re-read, flags still over it), or stays as it is.
fn reload(settings: &Settings, sources: &Sources) {
    let Some(file) = &sources.config_file else {
        return;
    };
    match Config::load(sources) {
        Ok(config) => {
            for warning in &config.warnings {
                tracing::warn!("{warning}");
            }
            if settings.replace(Live::new(&config, present_interfaces)) {
                tracing::info!(
                    "{} re-read; its configuration applies from the next cycle",
                    file.display()
                );
            } else {
                tracing::info!("{} re-read; nothing changed", file.display());
            }
        }
        Err(e) => tracing::error!("SIGHUP: {e}, so the configuration in force is kept"),
    }
}

fn serve_control(
    mut control: ControlSocket,
    latest: Arc<RwLock<Arc<CachedTree>>>,
    settings: Arc<Settings>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    while !stop.load(Ordering::Relaxed) {
        let incoming = match control.receive(POLL_INTERVAL) {
            Ok(Some(incoming)) => incoming,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("control socket: {e}");
                thread::sleep(POLL_INTERVAL);
                continue;
            }
        };
        let context = Context {
            tree: Arc::clone(&*latest.read().unwrap_or_else(|p| p.into_inner())),
            settings: Arc::clone(&settings),
        };
        let reply = answer(&incoming, &context);
        match control.reply(&incoming, &reply) {
            Ok(()) => counters.request_served(),
            Err(e) => tracing::warn!("cannot send a reply: {e}"),
        }
    }
}

/// Exactly one reply for whatever arrived.
pub fn answer(incoming: &Incoming, context: &Context) -> Vec<u8> {
    let decoded = match incoming.body.as_slice() {
        [frame] => decode_request(frame),
        [] => Err(Malformed::unreadable("The request has no body frame.")),
        frames => Err(Malformed::unreadable(format!(
            "The request has {} body frames; send the JSON message as one frame.",
            frames.len()
        ))),
    };
    let request = match decoded {
        Ok(request) => request,
        Err(m) => {
            tracing::debug!("malformed request: {}", m.error);
            return nack(&m.msg_val, m.id, &m.error);
        }
    };
    match Command::parse(&request) {
        Ok(command) => command.reply(&request, context),
        Err(error) => nack(&request.msg_val, request.id, &error),
    }
}

/// One encoded message for the PUB socket.
struct Outgoing {
    bytes: Vec<u8>,
    is_snapshot: bool,
}

/// The sampler's side of the publisher thread: snapshots and notifications go
/// out in the order they were made. Neither ever waits: when the publisher is
/// behind, the newest snapshot is dropped (subscribers see the gap in `id`),
/// and a notification only when a thousand are already waiting.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::SyncSender<Outgoing>,
    snapshots_waiting: Arc<AtomicUsize>,
    encoding: Encoding,
}

/// The publisher thread has gone: nothing more can be published.
#[derive(Debug)]
pub struct PublisherGone;

impl Outbox {
    fn new(encoding: Encoding) -> (Outbox, Inbox) {
        let (queue, outgoing) = mpsc::sync_channel(PUBLISH_QUEUE + NOTIFY_QUEUE);
        let snapshots_waiting = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            queue,
            snapshots_waiting: Arc::clone(&snapshots_waiting),
            encoding,
        };
        let inbox = Inbox {
            outgoing,
            snapshots_waiting,
        };
        (outbox, inbox)
    }

    fn encode<P: serde::Serialize>(&self, msg_val: &str, id: u32, params: P) -> Vec<u8> {
        let message = Message::new(MsgType::Notify, msg_val, id, params);
        match self.encoding {
            Encoding::Json => message.to_json(),
            Encoding::Msgpack => message.to_msgpack(),
        }
    }

    /// Queues the snapshot of `cycle` (a `status` notify whose id is the
    /// cycle). In JSON it is the tree's cached JSON, which replies reuse.
    pub fn snapshot(&self, cycle: u32, tree: &CachedTree) -> Result<(), PublisherGone> {
        if self.snapshots_waiting.load(Ordering::Acquire) >= PUBLISH_QUEUE {
            tracing::debug!("publisher is behind; snapshot {cycle} dropped");
            return Ok(());
        }
        let bytes = match self.encoding {
            Encoding::Json => self.encode("status", cycle, tree.json()),
            Encoding::Msgpack => self.encode("status", cycle, &**tree),
        };
        self.send(Outgoing {
            bytes,
            is_snapshot: true,
        })
    }

    /// Queues a notify message other than a snapshot, e.g. an event or alarm.
    /// `id` is the cycle it was noticed in.
    pub fn notify<P: serde::Serialize>(
        &self,
        msg_val: &str,
        id: u32,
        params: P,
    ) -> Result<(), PublisherGone> {
        let bytes = self.encode(msg_val, id, params);
        self.send(Outgoing {
            bytes,
            is_snapshot: false,
        })
    }

    fn send(&self, outgoing: Outgoing) -> Result<(), PublisherGone> {
        let is_snapshot = outgoing.is_snapshot;
        if is_snapshot {
            self.snapshots_waiting.fetch_add(1, Ordering::AcqRel);
        }
        match self.queue.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                if is_snapshot {
                    self.snapshots_waiting.fetch_sub(1, Ordering::AcqRel);
                }
                tracing::warn!("publisher is far behind; a notification was dropped");
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(PublisherGone),
        }
    }
}

/// The publisher thread's side of the [`Outbox`].
struct Inbox {
    outgoing: mpsc::Receiver<Outgoing>,
    snapshots_waiting: Arc<AtomicUsize>,
}

fn serve_publish(mut publisher: Publisher, inbox: Inbox, counters: Arc<Counters>) {
    loop {
        publisher.tend();
        match inbox.outgoing.recv_timeout(TEND_INTERVAL) {
            Ok(message) => {
                if message.is_snapshot {
                    inbox.snapshots_waiting.fetch_sub(1, Ordering::AcqRel);
                }
                match publisher.publish(&message.bytes) {
                    Ok(()) if message.is_snapshot => counters.snapshot_published(),
                    Ok(()) => {}
                    Err(e) => tracing::debug!("message not published: {e}"),
                }
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
