# frozen_string_literal: true

require "pg"
require_relative "../lakebase"

module Lakebase
  # Helpers for the pg gem: a fresh password for every new connection.
  module PG
    module_function

    # PG.connect parameters: conn_opts plus :password (always fresh from the library), :user (the
    # client's identity unless :user is given or PGUSER is set) and sslmode=require (unless given
    # or PGSSLMODE is set: Lakebase accepts only TLS). client nil means the default client.
    def connection_params(client = nil, **conn_opts)
      client ||= Lakebase.default_client
      params = conn_opts.dup
      params[:password] = client.password
      params[:user] = client.identity if blank?(params[:user]) && blank?(ENV["PGUSER"])
      params[:sslmode] = "require" if blank?(params[:sslmode]) && blank?(ENV["PGSSLMODE"])
      params
    end

    # ::PG.connect with connection_params(client, **conn_opts).
    def connect(client = nil, **conn_opts)
      ::PG.connect(connection_params(client, **conn_opts))
    end

    def blank?(value)
      value.nil? || value.to_s.empty?
    end
  end
end
