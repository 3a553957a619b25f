# frozen_string_literal: true

require "pg"
require_relative "../lakebase"

module Lakebase
  # Helpers for the pg gem: a fresh password for every new connection, opened as the library's own
  # libpq connects are (one retry after a rejected cached token, retries while an endpoint wakes
  # from scale-to-zero).
  module PG
    # The system CA bundles tried for sslrootcert (Debian/Ubuntu, RHEL/Fedora, Alpine/macOS); when
    # none exists, sslrootcert=system (libpq >= 16: the system's trusted roots).
    CA_BUNDLES = %w[/etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem].freeze
    # The sslmode values allowed: the password must not travel in clear text.
    TLS_MODES = %w[require verify-ca verify-full].freeze

    # Server answers after the password that no new password changes: a missing database or role,
    # a token for another identity, a server starting or shutting down, no free slot, TLS trouble.
    NOT_THE_PASSWORD = Regexp.union(
      /does not exist|did not match the security label|starting up|shutting down|not yet accepting|in recovery/i,
      /too many (connections|clients)|remaining connection slots|no pg_hba\.conf entry|not permitted to log in/i,
      /SSL|terminating connection/i
    )
    private_constant :NOT_THE_PASSWORD

    module_function

    # PG.connect parameters: conn_opts plus :password (always fresh from the library), :user (the
    # client's Postgres role unless :user is given or PGUSER is set), sslmode=verify-full (unless
    # given or PGSSLMODE is set; disable, allow and prefer raise InvalidArgumentError: the password
    # must not travel in clear text) and, for verify-ca / verify-full, sslrootcert = the system CA
    # bundle (unless given or PGSSLROOTCERT is set). client nil means the default client.
    def connection_params(client = nil, **conn_opts)
      client ||= Lakebase.default_client
      params = conn_opts.dup
      mode = [params[:sslmode], ENV["PGSSLMODE"]].find { |v| !blank?(v) }&.to_s || "verify-full"
      unless TLS_MODES.include?(mode)
        raise InvalidArgumentError.new(
          "sslmode=#{mode} is not allowed: Lakebase accepts only TLS, and the password must not be sent without it " \
          "(use require, verify-ca or verify-full)", code: 1, code_name: "LAKEBASE_INVALID_ARGUMENT"
        )
      end
      params[:sslmode] = mode if blank?(params[:sslmode]) && blank?(ENV["PGSSLMODE"])
      params[:sslrootcert] = system_bundle if mode != "require" && blank?(params[:sslrootcert]) && blank?(ENV["PGSSLROOTCERT"])
      params[:user] = client.postgres_role if blank?(params[:user]) && blank?(ENV["PGUSER"])
      params[:password] = client.password
      params
    end

    # ::PG.connect with connection_params(client, **conn_opts), opened like the library's own
    # connects: a login the server turned down with the password the client handed out is retried
    # once with a newly minted one (Client#refresh_rejected); a connect that failed because the
    # endpoint is waking (refused, reset, timed out, "the database system is starting up") is
    # retried with the library's backoff within connect_timeout (else 10 s; LAKEBASE_CONNECT_RETRY
    # overrides, 0 turns retries off). Nothing else is retried; the last PG::ConnectionBad is raised.
    def connect(client = nil, **conn_opts)
      client ||= Lakebase.default_client
      params = connection_params(client, **conn_opts)
      timeout = [params[:connect_timeout], ENV["PGCONNECT_TIMEOUT"]].find { |v| !blank?(v) }&.to_s
      start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      failed = 0
      renewed = false
      begin
        ::PG.connect(params)
      rescue ::PG::ConnectionBad => e
        failed += 1
        rejected, asked = classify(e)
        if rejected
          raise e if renewed

          renewed = true
          begin
            raise e unless client.refresh_rejected(params[:password])

            params[:password] = client.password
          rescue Lakebase::Error
            raise e # the driver's error says what the server refused
          end
          retry
        end
        elapsed = ((Process.clock_gettime(Process::CLOCK_MONOTONIC) - start) * 1000).to_i
        delay = Native.connect_retry_delay(sqlstate(e), e.message, asked, failed, elapsed, timeout)
        raise e if delay.nil?

        sleep(delay / 1000.0)
        retry
      end
    end

    # [rejected, password_asked] for a failed connect. ruby-pg hands over the failed connection
    # (PG::ConnectionBad#connection); while it is open, connection_used_password says whether the
    # server asked for the password. A finished one says nothing, and then libpq's message decides:
    # a FATAL server answer other than those no new password changes.
    def classify(error)
      conn = error.respond_to?(:connection) ? error.connection : nil
      asked =
        begin
          conn.connection_used_password if conn.respond_to?(:connection_used_password)
        rescue ::PG::Error
          nil
        end
      fatal = error.message[/FATAL:\s+(.*)/m, 1]
      if asked.nil?
        rejected = !fatal.nil? && !NOT_THE_PASSWORD.match?(fatal)
        return [rejected, rejected]
      end
      [asked && !NOT_THE_PASSWORD.match?(error.message), asked]
    end

    # The SQLSTATE in libpq's message when it carries one (verbose messages), else nil.
    def sqlstate(error)
      error.message[/FATAL:\s+([0-9A-Z]{5}):/, 1]
    end

    def system_bundle
      CA_BUNDLES.find { |f| File.file?(f) } || "system"
    end

    def blank?(value)
      value.nil? || value.to_s.empty?
    end

    private_class_method :classify, :sqlstate
  end
end
