//! `--profile DIR`: a `perf` recording of the service during each timed scenario
//! (software clock, 499 Hz, the whole process), summarised as the symbols that took
//! the most CPU, by self time and by shared object. Recording costs a little CPU of
//! its own, so figures of a profiled run are not the ones to quote.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

/// A `perf record` running against the service.
pub(crate) struct Recording {
    child: Child,
    data: PathBuf,
}

/// Starts recording process `pid` for `length` into `dir/label.data`.
pub(crate) fn start(
    dir: &Path,
    label: &str,
    pid: u32,
    length: Duration,
) -> anyhow::Result<Recording> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir.join(format!("{label}.data"));
    let child = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "499", "-g", "-o"])
        .arg(&data)
        .args(["-p", &pid.to_string(), "--", "sleep"])
        .arg(format!("{:.1}", length.as_secs_f64()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting perf (is it installed?)")?;
    Ok(Recording { child, data })
}

impl Recording {
    /// Waits for the recording and writes its summary beside it (`label.txt`).
    pub(crate) async fn finish(mut self) -> anyhow::Result<PathBuf> {
        self.child.wait().await.context("perf record")?;
        let mut summary = String::new();
        for sort in ["dso", "symbol"] {
            let output = Command::new("perf")
                .args(["report", "--stdio", "--no-children", "-g", "none"])
                .args(["--percent-limit", "0.5", "--sort", sort, "-i"])
                .arg(&self.data)
                .output()
                .await
                .context("perf report")?;
            summary.push_str(&String::from_utf8_lossy(&output.stdout));
            summary.push('\n');
        }
        let path = self.data.with_extension("txt");
        std::fs::write(&path, summary).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
