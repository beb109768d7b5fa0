//! The real `gamegate` binary as a child process, for the tests that need
//! what only a process has: its environment, its signals (SIGTERM, SIGHUP),
//! its exit status and the bytes it writes, read exactly as an operator's log
//! collector would.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// A gamegate child process and what it writes.
pub struct Gamegate {
    child: Child,
    _config: tempfile::TempPath,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
}

/// What a gamegate wrote, once it ended.
pub struct Output {
    pub status: ExitStatus,
    /// stdout (the log) line by line, each with its newline, as bytes.
    pub lines: Vec<Vec<u8>>,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|line| String::from_utf8(line.clone()).expect("the log is utf-8"))
            .collect()
    }

    pub fn containing(&self, needle: &str) -> Vec<String> {
        self.text()
            .into_iter()
            .filter(|line| line.contains(needle))
            .collect()
    }
}

impl Gamegate {
    /// `gamegate <command> --config <file holding config>` with only `env` in
    /// its environment, and text logs unless `env` sets `GAMEGATE_LOG_FORMAT`
    /// (to `""` for the default of a pipe: JSON).
    pub fn spawn(command: &str, config: &str, env: &[(&str, &str)]) -> Gamegate {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(config.as_bytes()).unwrap();
        let config = file.into_temp_path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gamegate"))
            .arg(command)
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("GAMEGATE_LOG_FORMAT", "text")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gamegate binary runs");
        let (lines, stdout) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if lines.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err.read_to_end(&mut bytes);
            bytes
        });
        Gamegate {
            child,
            _config: config,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Waits for the "gamegate is serving" line; returns the address in it
    /// and keeps the lines before it for [`Gamegate::stop`].
    pub fn serving(&mut self, seen: &mut Vec<Vec<u8>>) -> SocketAddr {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = match self.stdout.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let output = self.stop(std::mem::take(seen));
                    panic!(
                        "gamegate did not serve ({}):\n{}\n{}",
                        output.status,
                        output.text().join(""),
                        output.stderr
                    );
                }
            };
            let text = String::from_utf8_lossy(&line).into_owned();
            seen.push(line);
            if text.contains("gamegate is serving") {
                // `addr=127.0.0.1:PORT` (text) or `"addr":"127.0.0.1:PORT"` (JSON).
                let at = text
                    .find("127.0.0.1:")
                    .expect("the serving line names its address");
                let port: String = text[at + "127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()));
            }
        }
    }

    /// Kills the process (every line written so far has reached the pipe:
    /// each log line is one write) and collects what it wrote.
    pub fn stop(&mut self, mut lines: Vec<Vec<u8>>) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().expect("gamegate is waited for");
        lines.extend(self.stdout.iter());
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        Output {
            status,
            lines,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Waits at most `timeout` for the process to end by itself.
    pub fn exit_within(&mut self, timeout: Duration) -> Output {
        let until = Instant::now() + timeout;
        while self.child.try_wait().expect("gamegate is polled").is_none() {
            assert!(
                Instant::now() < until,
                "gamegate still runs after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        self.stop(Vec::new())
    }
}

impl Drop for Gamegate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gamegate {
    /// The configuration file it was started with (tests rewrite it before a
    /// SIGHUP).
    pub fn config_path(&self) -> &Path {
        &self._config
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `HUP`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The next line (as text) that contains `needle`, waiting at most
    /// `timeout`; every line read is kept in `seen`.
    pub fn wait_for_line(
        &mut self,
        needle: &str,
        timeout: Duration,
        seen: &mut Vec<Vec<u8>>,
    ) -> Option<String> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            let line = self.stdout.recv_timeout(left).ok()?;
            let text = String::from_utf8_lossy(&line).into_owned();
            seen.push(line);
            if text.contains(needle) {
                return Some(text);
            }
        }
    }

    /// Waits at most `timeout` for the process to end by itself, keeping
    /// `seen` before what it writes after.
    pub fn exit_after(&mut self, timeout: Duration, mut seen: Vec<Vec<u8>>) -> Output {
        let until = Instant::now() + timeout;
        while self.child.try_wait().expect("gamegate is polled").is_none() {
            assert!(
                Instant::now() < until,
                "gamegate still runs after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        let mut output = self.stop(Vec::new());
        seen.append(&mut output.lines);
        output.lines = seen;
        output
    }
}
