# frozen_string_literal: true

require_relative "test_helper"
require "sequel"

# The README's Sequel recipe: a :servers proc runs for every new physical connection and supplies
# the current password; connection_expiration makes the pool open new connections regularly.
class TestSequel < Minitest::Test
  include RigHelpers

  def test_sequel_pool_outlives_the_first_token
    client = Lakebase::Client.new(**fresh_options) # its own cache entry: the 10 s tokens minted here stay here
    logins = Queue.new
    db = Sequel.connect(
      adapter: "postgres", host: rig("PGHOST"), port: rig("PGPORT").to_i, database: "databricks_postgres",
      user: client.identity, sslmode: "verify-full", sslrootcert: rig("PGSSLROOTCERT"),
      max_connections: 4, test: false,
      servers: { default: ->(_db) { { password: client.password } } },
      after_connect: ->(conn, _server) { logins << [Time.now.to_f, conn.pass] }
    )
    db.extension(:connection_expiration)
    db.pool.connection_expiration_timeout = 1.5

    with_short_tokens do
      client.refresh
      first = client.password
      first_expiry = client.expiry
      seen = []
      poll_until("a Sequel connection after the first token expired") do
        assert_equal rig("RIG_USER"), db.get(Sequel.lit("current_user"))
        seen << logins.pop until logins.empty?
        seen.any? { |t, pw| t > first_expiry + 0.5 && pw != first }
      end
      assert_equal first, seen.first[1]
      assert_operator seen.size, :>=, 3
    end
  ensure
    db&.disconnect
    client&.close
  end
end
