//! The real SkillMeat CLI (the release pinned in `tests/support/skillmeat-venv.sh`), run on a
//! test [`Env`]'s HOME so that `~/.skillmeat` is `env.skillmeat_home`.
//!
//! The venv is created by the support script the first time (about 20 s, needs Python 3 with
//! `venv` and access to PyPI) and reused afterwards; `SKILLMEAT_VENV` points the script at
//! another venv. Tests that need the CLI call [`SkillMeat::new`]: it fails the test with the
//! script's output when the venv cannot be made, unless `SKILLMEATD_SKIP_INTEROP=1`, in
//! which case it says so and the test returns early. Every command runs without stdin,
//! without colours, in a scratch folder (a bare `skillmeat init` would turn the current
//! folder into a project), with the web-API notifications sent to a closed local port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use super::Env;

/// Set to `1` to skip the tests that need the real SkillMeat CLI.
pub const SKIP_VAR: &str = "SKILLMEATD_SKIP_INTEROP";

/// The support script that creates the venv and prints the path of `skillmeat`.
fn venv_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/skillmeat-venv.sh")
}

/// A support script by file name.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// Runs `make-skillmeat-home.sh` on `env`'s HOME: the default collection deployed into
/// `p1`, and into `p2` after its in-project init (tests/support/SKILLMEAT-CLI.md). Fails
/// the test with the script's errors when it fails.
pub fn make_home(env: &Env, p1: &Path, p2: &Path) {
    let out = Command::new("bash")
        .arg(support_script("make-skillmeat-home.sh"))
        .arg(&env.home)
        .args([p1, p2])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the venv script once per test process (tests run in parallel threads; the others
/// wait for the first). `Err` holds a message for the failing test.
fn skillmeat_bin() -> &'static Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = venv_script();
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bin = stdout.lines().last().map(PathBuf::from);
        match bin {
            Some(bin) if out.status.success() && bin.is_file() => Ok(bin),
            _ => Err(format!(
                "{} failed ({}):\n{}{}",
                script.display(),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    })
}

/// The SkillMeat CLI bound to one test world.
pub struct SkillMeat {
    pub bin: PathBuf,
    home: PathBuf,
    cwd: PathBuf,
}

impl SkillMeat {
    /// The CLI for `env`, or `None` when the interop tests are skipped. Panics with the venv
    /// script's output when SkillMeat cannot be installed.
    pub fn new(env: &Env, test: &str) -> Option<SkillMeat> {
        if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
            eprintln!("{test}: skipped ({SKIP_VAR}=1): needs the real SkillMeat CLI");
            return None;
        }
        let bin = match skillmeat_bin() {
            Ok(bin) => bin.clone(),
            Err(e) => panic!(
                "{test} needs the real SkillMeat CLI and it could not be set up \
                 (Python 3 with venv and PyPI access are required; set {SKIP_VAR}=1 to skip):\n{e}"
            ),
        };
        let cwd = env.path("skillmeat-cwd");
        std::fs::create_dir_all(&cwd).unwrap();
        Some(SkillMeat {
            bin,
            home: env.home.clone(),
            cwd,
        })
    }

    /// The venv folder holding the CLI (what `SKILLMEAT_VENV` names).
    pub fn venv(&self) -> PathBuf {
        self.bin
            .parent()
            .and_then(Path::parent)
            .expect("<venv>/bin/skillmeat")
            .to_path_buf()
    }

    /// A command with SkillMeat's environment: this world's HOME, no colours, no stdin.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.cwd)
            .env("HOME", &self.home)
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .env("SKILLMEAT_API_URL", "http://127.0.0.1:9")
            .env("SKILLMEAT_VENV", self.venv())
            .stdin(Stdio::null());
        c
    }

    /// Runs `skillmeat ARGS` and returns its output, whatever the exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(&self.bin).args(args).output().unwrap()
    }

    /// Runs `skillmeat ARGS` and asserts it succeeds.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "skillmeat {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `skillmeat sync-check PROJECT --format json`, parsed. Exit 0 (no drift) and 1 (drift)
    /// are both answers; anything else fails the test.
    pub fn sync_check(&self, project: &Path) -> Value {
        let p = project.to_str().unwrap();
        let out = self.output(&["sync-check", p, "--format", "json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "skillmeat sync-check failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "skillmeat sync-check: not JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}
