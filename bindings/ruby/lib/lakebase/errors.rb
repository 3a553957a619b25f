# frozen_string_literal: true

module Lakebase
  # A failed liblakebase call. #message is the library's detail (auth method, HTTP status, the
  # API's error code and message, what to set); it never contains a token or secret.
  class Error < StandardError
    # lakebase_result value and its name ("LAKEBASE_AUTH_ERROR").
    attr_reader :code, :code_name

    def initialize(message = nil, code: nil, code_name: nil)
      super(message)
      @code = code || self.class::CODE
      @code_name = code_name
    end

    CODE = nil
  end

  # LAKEBASE_INVALID_ARGUMENT: unknown option key, malformed options, NUL in a value, closed client.
  class InvalidArgumentError < Error; CODE = 1; end
  # LAKEBASE_CONFIG_ERROR: no host, no instance/endpoint, unknown profile, conflicting auth methods.
  class ConfigError < Error; CODE = 3; end
  # LAKEBASE_AUTH_ERROR: the workspace rejected the credentials (HTTP 401/403, OAuth error).
  class AuthError < Error; CODE = 4; end
  # LAKEBASE_API_ERROR: the workspace API answered with an error (e.g. unknown instance).
  class ApiError < Error; CODE = 5; end
  # LAKEBASE_NETWORK_ERROR: the workspace could not be reached in time.
  class NetworkError < Error; CODE = 6; end
  # LAKEBASE_INTERNAL_ERROR, or a code this gem does not know: a bug, please report it.
  class InternalError < Error; CODE = 7; end

  # liblakebase.so could not be loaded (see LAKEBASE_LIBRARY).
  class LibraryNotFoundError < LoadError; end

  ERRORS_BY_CODE = {
    1 => InvalidArgumentError, 3 => ConfigError, 4 => AuthError,
    5 => ApiError, 6 => NetworkError, 7 => InternalError
  }.freeze
end
