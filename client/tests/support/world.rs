//! A temporary world for the editor tests: a HOME with a SkillMeat collection (`default`:
//! the skill `review-skill` and the command `lint`), one project that deployed both into
//! `.claude` (as `skillmeat deploy` records it), and the real `skillmeatd` on a private
//! socket. Shared by smctl's in-process LSP tests (`src/lsp/tests.rs`) and the end-to-end
//! editor tests (`tests/editors.rs`); it needs only std, tempfile and the daemon binary
//! (hashes come from `skillmeatd hash`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The skill's main file: nine lines, so a change can be placed on a known line.
pub const SKILL_MD: &str =
    "---\nname: review-skill\nversion: 1.0.0\n---\n# Review\n\nStep one.\nStep two.\nStep three.\n";
pub const GUIDE_MD: &str = "guide\n";
pub const LINT_MD: &str = "---\ndescription: lint\n---\nRun the linter.\n";

/// Environment variables that could point a test at the user's real daemon.
const SCRUBBED: [&str; 6] = [
    "XDG_RUNTIME_DIR",
    "SKILLMEAT_HOME",
    "SKILLMEATD_STATE_DIR",
    "SKILLMEATD_SOCKET",
    "RUST_LOG",
    "SKILLMEATD_NO_AUTOSTART",
];

pub struct World {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub skillmeat_home: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// The project folder (canonical).
    pub project: PathBuf,
    bin_dir: PathBuf,
    daemon: Option<Child>,
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

impl World {
    /// Builds the files; `bin_dir` holds `skillmeatd` and `smctl`. Nothing runs yet.
    pub fn new(bin_dir: &Path) -> World {
        let daemon = bin_dir.join("skillmeatd");
        assert!(
            daemon.exists(),
            "{} is missing: run the tests with `cargo test --workspace` (or `cargo build --bin skillmeatd` first)",
            daemon.display()
        );
        let dir = tempfile::Builder::new().prefix("smlsp").tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        let skillmeat_home = home.join(".skillmeat");
        let project = root.join("code").join("app");
        let w = World {
            home,
            state_dir: root.join("state"),
            socket: root.join("run").join("d.sock"),
            project,
            skillmeat_home,
            bin_dir: bin_dir.to_path_buf(),
            daemon: None,
            dir,
        };
        let coll = w.collection_dir();
        write(&coll.join("skills/review-skill/SKILL.md"), SKILL_MD);
        write(&coll.join("skills/review-skill/refs/guide.md"), GUIDE_MD);
        write(&coll.join("commands/lint.md"), LINT_MD);
        write(
            &coll.join("collection.toml"),
            "[collection]\nname = \"default\"\nversion = \"1.0.0\"\ncreated = \"2026-01-01T00:00:00\"\nupdated = \"2026-01-01T00:00:00\"\n\n\
             [[artifacts]]\nname = \"review-skill\"\ntype = \"skill\"\npath = \"skills/review-skill\"\norigin = \"local\"\nadded = \"2026-01-01T00:00:00\"\n\n\
             [[artifacts]]\nname = \"lint\"\ntype = \"command\"\npath = \"commands/lint.md\"\norigin = \"local\"\nadded = \"2026-01-01T00:00:00\"\n",
        );
        write(
            &coll.join("collection.lock"),
            "[lock]\nversion = \"1.0.0\"\n\n[lock.entries]\n",
        );
        let root_dir = w.project.join(".claude");
        write(&root_dir.join("skills/review-skill/SKILL.md"), SKILL_MD);
        write(
            &root_dir.join("skills/review-skill/refs/guide.md"),
            GUIDE_MD,
        );
        write(&root_dir.join("commands/lint.md"), LINT_MD);
        let mut records = String::new();
        for (name, kind, path) in [
            ("review-skill", "skill", "skills/review-skill"),
            ("lint", "command", "commands/lint.md"),
        ] {
            let h = w.hash(&root_dir.join(path));
            records += &format!(
                "[[deployed]]\nartifact_name = \"{name}\"\nartifact_type = \"{kind}\"\nfrom_collection = \"default\"\ndeployed_at = \"2026-03-13T15:13:08\"\nartifact_path = \"{path}\"\ncontent_hash = \"{h}\"\nlocal_modifications = false\nmerge_base_snapshot = \"{h}\"\ndeployment_profile_id = \"claude_code\"\nplatform = \"claude_code\"\nprofile_root_dir = \".claude\"\ncollection_sha = \"{h}\"\n\n"
            );
        }
        write(&w.deployment_file(), &records);
        write(
            &w.skillmeat_home.join("daemon.toml"),
            &format!(
                "[discovery]\nscan = [\"{}\"]\nmax_depth = 3\nregistry = false\n",
                w.project.parent().unwrap().display()
            ),
        );
        w
    }

    pub fn collection_dir(&self) -> PathBuf {
        self.skillmeat_home.join("collections").join("default")
    }

    /// The deployed skill's main file.
    pub fn project_skill(&self) -> PathBuf {
        self.project.join(".claude/skills/review-skill/SKILL.md")
    }

    /// The collection's copy of the skill's main file.
    pub fn collection_skill(&self) -> PathBuf {
        self.collection_dir().join("skills/review-skill/SKILL.md")
    }

    pub fn deployment_file(&self) -> PathBuf {
        self.project.join(".claude/.skillmeat-deployed.toml")
    }

    /// SkillMeat's content hash of `path`, from `skillmeatd hash`.
    pub fn hash(&self, path: &Path) -> String {
        let out = Command::new(self.bin_dir.join("skillmeatd"))
            .arg("hash")
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    /// A command with this world's environment and nothing of the caller's daemon.
    pub fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        for k in SCRUBBED {
            c.env_remove(k);
        }
        c.env("SKILLMEATD_NO_AUTOSTART", "1")
            .env("HOME", &self.home)
            .env("SKILLMEAT_HOME", &self.skillmeat_home)
            .env("SKILLMEATD_STATE_DIR", &self.state_dir)
            .env("SKILLMEATD_SOCKET", &self.socket)
            .stdin(Stdio::null());
        c
    }

    /// Headless `nvim` with the plugin of `repo` (the checkout) and its end-to-end driver
    /// (`client/tests/support/nvim_e2e.lua`) editing this world's project skill for
    /// `rounds` rounds, results to `out`; editor state in the world's own XDG folders.
    pub fn nvim_e2e(&self, nvim: &Path, repo: &Path, out: &Path, rounds: u32) -> Command {
        let xdg = self.dir.path().join("xdg");
        let mut c = self.command(nvim);
        c.args(["--headless", "--clean", "--cmd"])
            .arg(format!(
                "set rtp^={}",
                repo.join("client/editors/nvim").display()
            ))
            .arg("-c")
            .arg(format!(
                "luafile {}",
                repo.join("client/tests/support/nvim_e2e.lua").display()
            ))
            .env("E2E_SMCTL", self.smctl_bin())
            .env("E2E_FILE", self.project_skill())
            .env("E2E_COLLECTION", self.collection_skill())
            .env("E2E_OUT", out)
            .env("E2E_ROUNDS", rounds.to_string())
            .env("XDG_CONFIG_HOME", xdg.join("config"))
            .env("XDG_DATA_HOME", xdg.join("data"))
            .env("XDG_STATE_HOME", xdg.join("state"))
            .env("XDG_CACHE_HOME", xdg.join("cache"));
        c
    }

    pub fn smctl_bin(&self) -> PathBuf {
        self.bin_dir.join("smctl")
    }

    /// Starts `skillmeatd run` and waits until its socket answers.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "the daemon is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = self
            .command(&self.bin_dir.join("skillmeatd"))
            .arg("run")
            .env("RUST_LOG", "skillmeatd=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(s) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("skillmeatd exited early ({s}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "skillmeatd did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the daemon (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Runs smctl with `args` and `--format json`; asserts success and parses stdout.
    pub fn smctl_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .command(&self.smctl_bin())
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "smctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until the daemon has seen every change made so far.
    pub fn sync(&self) {
        self.smctl_json(&["drift", "--sync"]);
    }

    /// The drift type of `name` in the project, as `smctl drift` reports it.
    pub fn drift_of(&self, name: &str) -> String {
        let v = self.smctl_json(&["drift", "--sync", "--all"]);
        v["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name && !a["profile_root"].as_str().unwrap_or("").is_empty())
            .map(|a| a["drift_type"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `text` with line `n` (0-based) replaced.
pub fn replace_line(text: &str, n: usize, with: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[n] = with;
    lines.join("\n") + "\n"
}
