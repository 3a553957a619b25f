# frozen_string_literal: true

require_relative "test_helper"

class TestPG < Minitest::Test
  include RigHelpers

  SSL_SQL = "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"

  def setup
    @client = Lakebase::Client.new(**pat_options)
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
    assert_equal "require", params[:sslmode]
    assert_equal rig("RIG_USER"), params[:user]
    params = Lakebase::PG.connection_params(@client, user: "someone", sslmode: "verify-full")
    assert_equal ["someone", "verify-full"], params.values_at(:user, :sslmode)
  ensure
    ENV["PGSSLMODE"] = "verify-full"
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
