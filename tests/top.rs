//! `odin-status top` in a real terminal: tmux runs it against a live service,
//! capture-pane reads the screen, send-keys presses keys. A matched process is
//! killed and the screen shows it missing; `q` and SIGTERM both leave the
//! terminal as it was (main screen, cursor shown) with exit status 0.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// A tmux server of this test's own (its socket named after the PID), killed
/// when dropped so no session outlives the test.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (run-tests.sh installs it with apt-get)"
        );
        Tmux {
            socket: format!("odin-status-{tag}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts `command` in a 100x30 pane that stays after it exits.
    fn start(&self, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "100",
            "-y",
            "30",
            command,
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend(keys);
        self.run(&args);
    }

    fn show(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", "top", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits (up to 20 s, for a loaded machine) for the screen to show every one of `wanted`.
    fn wait_for(&self, wanted: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if wanted.iter().all(|w| screen.contains(w)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{wanted:?} not on the screen within 20 s:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `top ARGS` under a shell that reports its exit status and stays,
    /// so the terminal it leaves behind can be looked at.
    fn start_top(&self, args: &str) {
        self.start(&format!(
            "{BIN} top {args}; echo \"top exited with status $?\"; exec sleep 600"
        ));
    }

    /// The PID of top, the shell's child.
    fn top_pid(&self) -> i32 {
        let shell = self.show("#{pane_pid}");
        eventually(10, "top's PID", || {
            std::fs::read_dir("/proc")
                .ok()?
                .flatten()
                .find_map(|entry| {
                    let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                    let after = stat.rsplit_once(") ")?.1;
                    let ppid = after.split_whitespace().nth(1)?;
                    (ppid == shell && stat.contains("(odin-status)"))
                        .then(|| entry.file_name().to_string_lossy().parse().ok())?
                })
        })
    }

    /// Waits for top to end; then the screen must be the shell's again
    /// (main screen, cursor shown) with top's exit status on it.
    fn wait_exit(&self) -> String {
        let screen = self.wait_for(&["top exited with status"]);
        assert!(
            !screen.contains("q quit"),
            "top's screen is gone:\n{screen}"
        );
        let flags = self.show("alternate=#{alternate_on} cursor=#{cursor_flag}");
        let status = screen
            .lines()
            .find_map(|l| l.strip_prefix("top exited with status "))
            .unwrap_or("")
            .trim();
        format!("{status} {flags}")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn top_shows_a_live_service_follows_a_kill_and_quits_cleanly() {
    let name = format!("9{}.25", std::process::id());
    let sleeper = Reaped(Command::new("sleep").arg(&name).spawn().unwrap());
    let svc = Service::start(&[
        "--rate",
        "4",
        "--interfaces",
        "lo",
        "--disks",
        "/tmp",
        "--processes",
        &format!("{name}:1"),
    ]);
    let tmux = Tmux::new("top");
    tmux.start_top(&format!("--pub {} --ctrl {}", svc.publish, svc.ctrl));
    let screen = tmux.wait_for(&[
        &name,
        "1/1",
        " ok ",
        "Disks (1)",
        "_tmp",
        "Interfaces (1)",
        "lo",
        "cycle ",
    ]);
    assert!(screen.contains("q quit"), "{screen}");

    // The process dies: its row turns missing and the event pane says so.
    let pid = sleeper.0.id();
    send_signal(pid as i32, 9);
    tmux.wait_for(&["0/1", "missing", &format!("{name} pid {pid} exited")]);

    tmux.keys(&["s"]);
    tmux.wait_for(&["sort: state (s)"]);
    tmux.keys(&["/", "9", "Enter"]);
    tmux.wait_for(&["filter: 9 (Esc clears)", "Processes (1)"]);
    tmux.keys(&["/", "x", "y", "z", "Enter"]);
    tmux.wait_for(&["Processes (0)", "(none matches the filter)"]);
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["Processes (1)"]);
    tmux.keys(&["p"]);
    tmux.wait_for(&["PAUSED (p)"]);
    tmux.keys(&["p"]);
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0 alternate=0 cursor=1");
}

#[test]
fn top_restores_the_terminal_on_sigterm_and_says_when_stale() {
    let dir = TempDir::new("top-stale");
    let nobody = format!("ipc://{}", dir.path("nobody").display());
    let tmux = Tmux::new("stale");
    tmux.start_top(&format!("--pub {nobody}"));
    tmux.wait_for(&["waiting for the first snapshot"]);
    // Nothing comes: stale after 5 s without a first snapshot.
    tmux.wait_for(&["STALE: no snapshot yet"]);
    send_signal(tmux.top_pid(), 15);
    assert_eq!(tmux.wait_exit(), "0 alternate=0 cursor=1");
}
