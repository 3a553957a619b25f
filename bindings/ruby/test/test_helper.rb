# frozen_string_literal: true

# Runs against the liblakebase test rig (tests/rig): the rig named by FAKE_URL/PGPORT/... in the
# environment (scripts/test-bindings.sh starts one), or one started here for this run. The library
# comes from LAKEBASE_LIBRARY, defaulting to the repository's target/release build.
require "json"
require "net/http"
require "tmpdir"
require "fileutils"
require "securerandom"

REPO = File.expand_path("../../..", __dir__)

unless ENV["LAKEBASE_LIBRARY"]
  built = File.join(REPO, "target", "release", "liblakebase.so")
  ENV["LAKEBASE_LIBRARY"] = built if File.exist?(built)
end

unless ENV["FAKE_URL"] && ENV["PGPORT"]
  rig_dir = Dir.mktmpdir("lakebase-ruby-rig-")
  rig = File.join(REPO, "tests", "rig", "rig.py")
  system("python3", rig, "up", "--dir", rig_dir, out: File::NULL) or abort("could not start the test rig")
  JSON.parse(File.read(File.join(rig_dir, "env.json"))).each { |k, v| ENV[k] = v }
  at_exit do
    system("python3", rig, "down", "--dir", rig_dir, out: File::NULL)
    FileUtils.rm_rf(rig_dir)
  end
end

# No Databricks configuration from the machine; HOME without a ~/.databrickscfg; TLS verified.
# XDG_*: the shared token cache would live there, shared with every other process of this user.
ENV.keys.each { |k| ENV.delete(k) if k.start_with?("DATABRICKS_", "LAKEBASE_") && k != "LAKEBASE_LIBRARY" }
%w[XDG_RUNTIME_DIR XDG_CACHE_HOME].each { |k| ENV.delete(k) }
%w[PGUSER PGPASSWORD].each { |k| ENV.delete(k) }
ENV["HOME"] = Dir.mktmpdir("lakebase-ruby-home-")
HOME_DIR = ENV["HOME"]
at_exit { FileUtils.rm_rf(HOME_DIR) }
ENV["PGSSLMODE"] = "verify-full"

require "minitest/autorun"
require "lakebase"
require "lakebase/pg"

module RigHelpers
  module_function

  def rig(key)
    ENV.fetch(key) { raise "#{key} not set (the rig's env.sh)" }
  end

  def fake(path, body = nil)
    uri = URI(rig("FAKE_URL") + path)
    res = if body
            Net::HTTP.post(uri, body.to_json, "Content-Type" => "application/json")
          else
            Net::HTTP.get_response(uri)
          end
    JSON.parse(res.body)
  end

  def minted
    fake("/_fake/stats")["lakebase_tokens_minted_total"]
  end

  def failed_checks
    fake("/_fake/stats")["checks"]["failed"]
  end

  # A new personal access token for the rig's user: a client using it has a cache entry of its own.
  def fresh_pat
    pat = "dapi#{SecureRandom.hex(16)}"
    fake("/_fake/identities", { pats: { pat => rig("RIG_USER") } })
    pat
  end

  def fresh_options
    { host: rig("FAKE_URL"), token: fresh_pat, instance: rig("RIG_INSTANCE") }
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def pat_options
    { host: rig("FAKE_URL"), token: rig("RIG_PAT"), instance: rig("RIG_INSTANCE") }
  end

  def sp_options
    { host: rig("FAKE_URL"), client_id: rig("RIG_SP_CLIENT_ID"), client_secret: rig("RIG_SP_CLIENT_SECRET") }
  end

  # Tokens minted inside the block live 10 s (the library refreshes them ~5 s before expiry).
  def with_short_tokens
    fake("/_fake/config", { token_lifetime_seconds: 10 })
    yield
  ensure
    fake("/_fake/config", { token_lifetime_seconds: 3600 })
  end

  # Bounded polling: yield every interval seconds until it returns true; fail after timeout.
  def poll_until(what, timeout: 30, interval: 0.3)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    until yield
      raise Minitest::Assertion, "timed out after #{timeout} s waiting for #{what}" if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep interval
    end
  end
end

# Reset once, before this process holds any token (a reset makes the fake forget minted tokens).
RigHelpers.fake("/_fake/reset", {})
