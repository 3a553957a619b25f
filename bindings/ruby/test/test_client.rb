# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"
require "pathname"

class TestClient < Minitest::Test
  include RigHelpers

  def setup
    @client = Lakebase::Client.new(**pat_options)
  end

  def teardown
    @client.close
  end

  def test_version
    assert_match(/\A0\./, Lakebase.library_version)
  end

  def test_options_string_quotes_every_value
    assert_equal "host='h' http_timeout_seconds='5'",
                 Lakebase.options_string(host: "h", instance: nil, http_timeout_seconds: 5)
    assert_equal "'it\\'s a \\\\ path'", Lakebase.quote_value("it's a \\ path")
    assert_raises(Lakebase::InvalidArgumentError) { Lakebase.options_string("bad key": "x") }
    assert_raises(Lakebase::InvalidArgumentError) { Lakebase.options_string(token: "a\0b") }
  end

  def test_pat_client
    pw = @client.password
    assert_operator pw.bytesize, :>, 500
    assert_equal 2, pw.count(".")
    assert_equal pw, @client.password
    assert_equal Encoding::UTF_8, pw.encoding
    assert_equal rig("RIG_USER"), @client.identity
    assert_equal "pat", @client.auth_type
    assert_nil @client.refresh_error
    assert_operator @client.expiry, :>, Time.now.to_i + 60
    assert_kind_of Time, @client.expires_at
  end

  def test_m2m_client_endpoint
    Lakebase::Client.open(**sp_options, endpoint: rig("RIG_ENDPOINT")) do |c|
      assert_equal "oauth-m2m", c.auth_type
      refute_empty c.password
      assert_equal rig("RIG_SP_USER"), c.identity
    end
  end

  def test_refresh_mints_a_new_token
    before = @client.password
    n = minted
    @client.refresh
    assert_equal n + 1, minted
    refute_equal before, @client.password
  end

  def test_insufficient_size_protocol
    expected = @client.password
    p = @client.send(:handle)
    got = Lakebase::Native.get_string(8) { |buf, len, out| Lakebase::Native.lakebase_client_get_password(p, buf, len, out) }
    assert_equal expected, got
  end

  def test_wrong_pat_is_auth_error_without_the_token
    bad = "dapi#{'0123456789abcdef' * 2}"
    e = assert_raises(Lakebase::AuthError) do
      Lakebase::Client.open(host: rig("FAKE_URL"), token: bad, instance: rig("RIG_INSTANCE"), &:password)
    end
    assert_kind_of Lakebase::Error, e
    assert_equal 4, e.code
    assert_equal "LAKEBASE_AUTH_ERROR", e.code_name
    assert_includes e.message, "403"
    assert_includes e.message, "pat"
    refute_includes e.message, bad
    refute_includes e.inspect, bad
  end

  def test_error_kinds
    e = assert_raises(Lakebase::ConfigError) { Lakebase::Client.open(**pat_options, instance: nil, &:password) }
    assert_includes e.message, "LAKEBASE_INSTANCE"
    e = assert_raises(Lakebase::ApiError) { Lakebase::Client.open(**pat_options, instance: "no-such-db", &:password) }
    assert_includes e.message, "RESOURCE_DOES_NOT_EXIST"
    assert_raises(Lakebase::NetworkError) do
      Lakebase::Client.open(host: "http://127.0.0.1:1", token: "dapi0", instance: "x", retry_timeout_seconds: 1, &:password)
    end
    e = assert_raises(Lakebase::InvalidArgumentError) { Lakebase::Client.new(host: "https://h", bogus: 1) }
    assert_includes e.message, 'unknown option "bogus"'
  end

  def test_quoted_values_reach_the_library
    Dir.mktmpdir do |tmp|
      dir = File.join(tmp, "it's a \\ dir")
      Dir.mkdir(dir)
      cfg = File.join(dir, "databrickscfg")
      File.write(cfg, "[rig]\nhost = #{rig('FAKE_URL')}\ntoken = #{rig('RIG_PAT')}\n")
      Lakebase::Client.open(config_file: Pathname(cfg), profile: "rig", instance: rig("RIG_INSTANCE")) do |c|
        assert_equal rig("RIG_USER"), c.identity
      end
    end
  end

  def test_close
    c = Lakebase::Client.new(**pat_options)
    c.close
    c.close
    assert c.closed?
    assert_raises(Lakebase::InvalidArgumentError) { c.password }
  end

  def test_threads_share_one_client
    expected = @client.password
    results = Array.new(8) { Thread.new { Array.new(100) { @client.password } } }.flat_map(&:value)
    assert_equal [expected], results.uniq
  end

  # The default client is configured from the environment on first use: run it in a fresh process.
  def test_default_client_from_environment
    env = { "DATABRICKS_HOST" => rig("FAKE_URL"), "DATABRICKS_TOKEN" => rig("RIG_PAT"),
            "LAKEBASE_INSTANCE" => rig("RIG_INSTANCE") }
    script = <<~RUBY
      require "lakebase"; require "lakebase/pg"; require "json"
      pw = Lakebase.password
      d = Lakebase.default_client
      d.close # borrowed: a no-op
      conn = Lakebase::PG.connect(dbname: "databricks_postgres")
      puts JSON.generate(len: pw.bytesize, identity: d.identity, user: conn.exec("select current_user").getvalue(0, 0))
    RUBY
    out, err, st = Open3.capture3(env, RbConfig.ruby, *$LOAD_PATH.grep(%r{/lib\z}).flat_map { |p| ["-I", p] }, "-e", script)
    assert st.success?, err
    got = JSON.parse(out.lines.last)
    assert_equal rig("RIG_USER"), got["identity"]
    assert_equal rig("RIG_USER"), got["user"]
    assert_operator got["len"], :>, 500

    out, err, st = Open3.capture3(RbConfig.ruby, *$LOAD_PATH.grep(%r{/lib\z}).flat_map { |p| ["-I", p] }, "-e",
                                  'require "lakebase"; begin; Lakebase.password; rescue Lakebase::ConfigError => e; puts e.class; end')
    assert st.success?, err
    assert_equal "Lakebase::ConfigError", out.strip
  end
end
