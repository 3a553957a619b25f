# frozen_string_literal: true

require_relative "test_helper"

class TestPG < Minitest::Test
  include RigHelpers

  SSL_SQL = "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"

  def setup
    @client = Lakebase::Client.new(**fresh_options) # a cache entry of its own: short-lived tokens minted here stay here
  end

  def teardown
    @client.close
  end

  def test_connect_over_tls
    conn = Lakebase::PG.connect(@client, dbname: "databricks_postgres")
    assert_equal [[rig("RIG_USER"), "t"]], conn.exec(SSL_SQL).values
    assert_equal @client.password, conn.pass
  ensure
    conn&.close
  end

  def test_connection_params_defaults
    ENV.delete("PGSSLMODE")
    params = Lakebase::PG.connection_params(@client, dbname: "x")
    assert_equal "verify-full", params[:sslmode]
    assert_equal rig("RIG_USER"), params[:user]
    assert_equal @client.postgres_role, params[:user]
    refute params.key?(:sslrootcert), "PGSSLROOTCERT names the rig's CA"
    params = Lakebase::PG.connection_params(@client, user: "someone", sslmode: "require")
    assert_equal ["someone", "require", false], [*params.values_at(:user, :sslmode), params.key?(:sslrootcert)]
    saved = ENV.delete("PGSSLROOTCERT")
    begin
      assert_includes Lakebase::PG::CA_BUNDLES + ["system"], Lakebase::PG.connection_params(@client)[:sslrootcert]
      # The system roots do not include the rig's CA: the certificate check fails before any login.
      e = assert_raises(::PG::ConnectionBad) { Lakebase::PG.connect(@client, dbname: "databricks_postgres") }
      assert_match(/certificate verify failed/, e.message)
    ensure
      ENV["PGSSLROOTCERT"] = saved
    end
  ensure
    ENV["PGSSLMODE"] = "verify-full"
  end

  def test_tls_modes_without_encryption_are_refused
    %w[disable allow prefer].each do |mode|
      e = assert_raises(Lakebase::InvalidArgumentError) { Lakebase::PG.connect(@client, sslmode: mode) }
      assert_match(/only TLS/, e.message)
    end
    ENV["PGSSLMODE"] = "disable"
    assert_raises(Lakebase::InvalidArgumentError) { Lakebase::PG.connection_params(@client) }
  ensure
    ENV["PGSSLMODE"] = "verify-full"
  end

  # The server no longer accepts the cached token (revoked here; in the field also a token left in
  # the shared cache by another process): one new token, one more login, which succeeds.
  def test_a_rejected_cached_token_is_replaced_once
    Lakebase::Client.open(**fresh_options) do |c|
      old = c.password
      assert_equal 1, fake("/_fake/revoke", { token: old })["revoked"]
      n = minted
      failed = failed_checks
      conn = Lakebase::PG.connect(c, dbname: "databricks_postgres")
      assert_equal rig("RIG_USER"), conn.exec("select current_user").getvalue(0, 0)
      conn.close
      assert_equal n + 1, minted, "one new token"
      assert_equal failed + 1, failed_checks, "one rejected login"
      refute_equal old, c.password
      assert c.refresh_rejected(old), "a stale report: the current password is another one"
      assert_equal n + 1, minted
    end
  end

  # A login no new token can fix (a token for another identity, in Lakebase's words) is not retried.
  def test_an_identity_mismatch_is_not_retried
    Lakebase::Client.open(**fresh_options) do |c|
      pw = c.password
      fake("/_fake/config", { pg_reject_mode: "identity" })
      n = minted
      failed = failed_checks
      e = assert_raises(::PG::ConnectionBad) { Lakebase::PG.connect(c, user: rig("RIG_SP_USER")) }
      assert_match(/did not match the security label/, e.message)
      refute_includes e.message + e.inspect, pw
      assert_equal n, minted, "no new token"
      assert_equal failed + 1, failed_checks, "one login attempt"
    ensure
      fake("/_fake/config", { pg_reject_mode: "pam" })
    end
  end

  def test_a_missing_database_is_not_retried
    @client.password
    n = minted
    t0 = monotonic
    e = assert_raises(::PG::ConnectionBad) { Lakebase::PG.connect(@client, dbname: "no_such_db") }
    assert_match(/does not exist/, e.message)
    assert_operator monotonic - t0, :<, 2.0, "no backoff"
    assert_equal n, minted
  end

  # An endpoint waking from scale-to-zero refuses connections, then answers "starting up": the
  # connect retries with backoff within connect_timeout and logs in once it is up.
  def test_a_waking_endpoint_is_retried
    cold = ENV["RIG_COLD_HOST"].to_s
    skip "the rig has no cold-start host" if cold.empty?
    Lakebase::Client.open(**fresh_options) do |c|
      fake("/_fake/cold/arm", { mode: "refuse", wake_ms: 1500, now: true })
      t0 = monotonic
      conn = Lakebase::PG.connect(c, host: cold, dbname: "databricks_postgres", connect_timeout: 10)
      assert_equal rig("RIG_USER"), conn.exec("select current_user").getvalue(0, 0)
      conn.close
      assert_operator monotonic - t0, :>=, 1.0, "it waited for the wake-up"
      fake("/_fake/cold/arm", { mode: "starting", wake_attempts: 2, now: true })
      Lakebase::PG.connect(c, host: cold, dbname: "databricks_postgres", connect_timeout: 10).close
      assert_equal 2, fake("/_fake/cold")["counters"]["starting"].to_i, 'two "starting up" answers, then the login'
      # LAKEBASE_CONNECT_RETRY=0 turns retries off: the first refusal is the answer.
      ENV["LAKEBASE_CONNECT_RETRY"] = "0"
      fake("/_fake/cold/arm", { mode: "refuse", wake_ms: 60_000, now: true })
      t0 = monotonic
      assert_raises(::PG::ConnectionBad) { Lakebase::PG.connect(c, host: cold, connect_timeout: 10) }
      assert_operator monotonic - t0, :<, 2.0, "no retries"
    end
  ensure
    ENV.delete("LAKEBASE_CONNECT_RETRY")
    fake("/_fake/cold/reset", {})
  end

  # The default user is the client's Postgres role: its group's role when it acts for a group.
  def test_the_default_user_is_the_postgres_role
    group = ENV["RIG_GROUP_NAME"].to_s
    skip "the rig has no group" if group.empty?
    Lakebase::Client.open(host: rig("FAKE_URL"), token: fresh_pat, endpoint: rig("RIG_ENDPOINT"), group_name: group) do |c|
      assert_equal rig("RIG_USER"), c.identity
      assert_equal group, c.postgres_role
      conn = Lakebase::PG.connect(c, dbname: "databricks_postgres")
      assert_equal group, conn.exec("select current_user").getvalue(0, 0)
      conn.close
    end
  end

  def test_m2m_identity_is_the_postgres_role
    Lakebase::Client.open(**sp_options, instance: rig("RIG_INSTANCE")) do |c|
      conn = Lakebase::PG.connect(c, dbname: "databricks_postgres")
      assert_equal rig("RIG_SP_USER"), conn.exec("select current_user").getvalue(0, 0)
      conn.close
    end
  end

  def test_wrong_pat_surfaces_auth_error_before_connecting
    bad = "dapi#{'f' * 32}"
    Lakebase::Client.open(host: rig("FAKE_URL"), token: bad, instance: rig("RIG_INSTANCE")) do |c|
      e = assert_raises(Lakebase::AuthError) { Lakebase::PG.connect(c, user: rig("RIG_USER")) }
      assert_includes e.message, "403"
      refute_includes e.message, bad
    end
  end

  # Repeated PG.connect calls (what every pool does for a new physical connection) keep working
  # past the first (10 s) token's expiry, each with the library's current token.
  def test_repeated_connects_outlive_the_first_token
    with_short_tokens do
      @client.refresh
      first = @client.password
      first_expiry = @client.expiry
      assert_operator first_expiry - Time.now.to_f, :<=, 11
      n = minted
      logins = []
      poll_until("a connection after the first token expired") do
        conn = Lakebase::PG.connect(@client, dbname: "databricks_postgres")
        assert_equal rig("RIG_USER"), conn.exec("select current_user").getvalue(0, 0)
        logins << [Time.now.to_f, conn.pass]
        conn.close
        logins.any? { |t, pw| t > first_expiry + 0.5 && pw != first }
      end
      assert_equal first, logins.first[1]
      assert_operator minted, :>=, n + 1
      assert_nil @client.refresh_error
    end
  end
end
