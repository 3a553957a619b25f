# frozen_string_literal: true

require "openssl"
require_relative "native"

module Lakebase
  OPTION_KEY = /\A[A-Za-z_][A-Za-z0-9_]*\z/.freeze

  # Quote one value for a libpq-style options string: '...' with \ and ' backslash-escaped.
  def self.quote_value(value)
    "'#{value.to_s.gsub(/[\\']/) { |c| "\\#{c}" }}'"
  end

  # The options string liblakebase parses: key='value' ... (nil values are left out). Keys are not
  # checked against a list here; the library rejects unknown ones.
  def self.options_string(**options)
    options.filter_map do |key, value|
      next if value.nil?

      key = key.to_s
      raise InvalidArgumentError.new("invalid option name #{key.inspect}", code: 1) unless OPTION_KEY.match?(key)

      text = value.respond_to?(:to_path) ? value.to_path : value.to_s
      raise InvalidArgumentError.new("option #{key} contains a NUL character", code: 1) if text.include?("\0")

      "#{key}=#{quote_value(text)}"
    end.join(" ")
  end

  # A Lakebase credential client:
  #
  #   client = Lakebase::Client.new(host: "https://...", token: "dapi...", instance: "my-db")
  #   client.password  # a fresh-enough token; ask again for every new connection
  #
  # Keyword arguments are the library's option keys (host, token, client_id, client_secret,
  # profile, config_file, auth_type, instance, endpoint, ca_file, http_timeout_seconds, ...); what
  # is not given comes from DATABRICKS_* / LAKEBASE_* variables and ~/.databrickscfg, as in the
  # Databricks SDKs. Creating a client does no network I/O. Clients with the same workspace,
  # credentials and target share one cached token inside the library.
  #
  # Thread safety: any number of threads may use one client; #close must not race with other calls.
  class Client
    # Like new, but yields the client and closes it afterwards when a block is given.
    def self.open(**options)
      client = new(**options)
      return client unless block_given?

      begin
        yield client
      ensure
        client.close
      end
    end

    def self.borrow(pointer) # :nodoc:
      client = allocate
      client.instance_variable_set(:@ptr, pointer)
      client.instance_variable_set(:@borrowed, true)
      client
    end

    def initialize(**options)
      @borrowed = false
      conninfo = Lakebase.options_string(**options)
      cstr = FFI::MemoryPointer.from_string(conninfo)
      out = FFI::MemoryPointer.new(:pointer)
      begin
        Native.check(Native.lakebase_client_new(cstr, out))
      ensure
        cstr.clear # the options may hold a token or client secret
      end
      @ptr = FFI::AutoPointer.new(out.read_pointer, Native.method(:lakebase_client_free))
    end

    # The current Lakebase password (an OAuth token). A cache hit is a memory read in the library;
    # a miss mints a token. Fetch it for every new connection; do not keep it.
    def password
      p = handle
      Native.get_string { |buf, len, out| Native.lakebase_client_get_password(p, buf, len, out) }
    end

    # Discard the cached token and mint a new one now. After a rejected login prefer
    # #refresh_rejected, which mints once however many connections report it.
    def refresh
      Native.check(Native.lakebase_client_refresh(handle))
      nil
    end

    # The server turned down a login with +rejected+ (a password this client handed out): mint a
    # new one if it is still the cached password (N concurrent reports cause one mint). Returns
    # whether the client's password is now another one, i.e. worth one more login.
    def refresh_rejected(rejected)
      cstr = FFI::MemoryPointer.from_string(rejected)
      begin
        Native.check(Native.lakebase_client_refresh_rejected(handle, cstr))
      ensure
        cstr.clear
      end
      !OpenSSL.secure_compare(password, rejected)
    end

    # Expiry of the cached token in Unix seconds, or nil when none is cached. No network I/O.
    def expiry
      out = FFI::MemoryPointer.new(:int64)
      Native.check(Native.lakebase_client_token_expiry(handle, out))
      v = out.read(:int64)
      v.zero? ? nil : v
    end

    # #expiry as a Time (or nil).
    def expires_at
      e = expiry
      e && Time.at(e)
    end

    # The workspace user name the client authenticates as, which is its Postgres role (one API
    # call the first time, then cached by the library).
    def identity
      p = handle
      Native.get_string(256) { |buf, len, out| Native.lakebase_client_identity(p, buf, len, out) }
    end

    # The Postgres role to log in as: the group's role when the client acts for a group
    # (group_name / group_id), else #identity. Lakebase::PG uses it as the default user. Cached.
    def postgres_role
      p = handle
      Native.get_string(256) { |buf, len, out| Native.lakebase_client_postgres_role(p, buf, len, out) }
    end

    # The Postgres host of the configured instance (read_write_dns) or endpoint. Cached.
    def postgres_host
      p = handle
      Native.get_string(256) { |buf, len, out| Native.lakebase_client_postgres_host(p, buf, len, out) }
    end

    # The auth method in use: "pat", "oauth-m2m", ... No network I/O.
    def auth_type
      p = handle
      Native.get_string(64) { |buf, len, out| Native.lakebase_client_auth_type(p, buf, len, out) }
    end

    # The last token-refresh error not yet followed by a success, or nil.
    def refresh_error
      p = handle
      s = Native.get_string(256) { |buf, len, out| Native.lakebase_client_refresh_error(p, buf, len, out) }
      s.empty? ? nil : s
    end

    # Release the handle (a no-op for the default client and when already closed).
    def close
      return if @borrowed || @ptr.nil?

      ptr = @ptr
      @ptr = nil
      ptr.free
      nil
    end

    def closed?
      @ptr.nil?
    end

    def inspect
      "#<#{self.class} #{if closed? then 'closed' elsif @borrowed then 'default' else 'open' end}>"
    end

    private

    def handle
      @ptr or raise InvalidArgumentError.new("this Lakebase::Client is closed", code: 1)
    end
  end

  @default_mutex = Mutex.new

  class << self
    # The process-wide default client (environment + ~/.databrickscfg), the one Lakebase.password
    # uses. Borrowed: #close does nothing. A configuration error is not remembered, so fixing the
    # environment and calling again works.
    def default_client
      @default_mutex.synchronize do
        @default_client ||= begin
          out = FFI::MemoryPointer.new(:pointer)
          Native.check(Native.lakebase_default_client(out))
          Client.borrow(out.read_pointer)
        end
      end
    end

    # The default client's current password.
    def password
      Native.get_string { |buf, len, out| Native.lakebase_get_password(buf, len, out) }
    end

    # The loaded liblakebase's version.
    def library_version
      Native.lakebase_version
    end
  end
end
