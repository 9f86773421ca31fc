# Homebrew formula for skillmeatd and smctl, built from the release tarball of a tag.
#
# Not tested on this project's machines (Linux, no Homebrew): tests/it/packaging.rs only
# keeps it in step with the workspace (the version in `url`) and with the launchd agent in
# launchd/ (the `service` block). At a release, `url` names the new tag and `sha256` is
# that tarball's; `brew bump-formula-pr --url=<tarball> skillmeatd` sets both.
class Skillmeatd < Formula
  desc "Always-on drift detection, history and safe write-back for SkillMeat"
  homepage "https://example.invalid/skillmeatd"
  url "https://example.invalid/skillmeatd/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "MIT"
  head "https://example.invalid/skillmeatd.git", branch: "main"

  depends_on "rust" => :build

  def install
    # The root package builds both binaries (smctl from the client library).
    system "cargo", "install", *std_cargo_args(path: ".")
    generate_completions_from_executable(bin/"smctl", "completions")
    (man1/"skillmeatd.1").write Utils.safe_popen_read(bin/"skillmeatd", "man")
    (man1/"smctl.1").write Utils.safe_popen_read(bin/"smctl", "man")
  end

  # launchd/dev.skillmeat.skillmeatd.plist as a service: `brew services start skillmeatd`
  # runs the daemon in the foreground at login, restarts it when it fails (not when it
  # stops cleanly), at most every 10 s.
  service do
    run [opt_bin/"skillmeatd", "run"]
    keep_alive successful_exit: false
    throttle_interval 10
    process_type :adaptive
    log_path var/"log/skillmeatd.log"
    error_log_path var/"log/skillmeatd.log"
  end

  test do
    assert_match "skillmeatd #{version} (protocol ", shell_output("#{bin}/skillmeatd --version")
    assert_match "smctl #{version} (protocol ", shell_output("#{bin}/smctl --version")
    (testpath/"hello.md").write "Say hello.\n"
    assert_match "hello.md", shell_output("#{bin}/skillmeatd hash #{testpath}/hello.md")
    # No daemon and no autostart: one line on stderr and exit code 3.
    ENV["SKILLMEATD_NO_AUTOSTART"] = "1"
    ENV["SKILLMEATD_SOCKET"] = (testpath/"none.sock").to_s
    assert_match "not running", shell_output("#{bin}/smctl status 2>&1", 3)
  end
end
