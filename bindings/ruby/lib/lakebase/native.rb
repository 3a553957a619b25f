# frozen_string_literal: true

require "ffi"
require_relative "errors"

module Lakebase
  # The C functions of include/lakebase.h. Calls that may go to the network release the GVL
  # (blocking: true); they still run on the calling thread, so lakebase_last_error reads that
  # thread's message.
  module Native
    extend FFI::Library

    OK = 0
    INSUFFICIENT_SIZE = 2
    ABI_MAJOR = 0

    CANDIDATES =
      if ENV["LAKEBASE_LIBRARY"] && !ENV["LAKEBASE_LIBRARY"].empty?
        [ENV["LAKEBASE_LIBRARY"]]
      else
        ["liblakebase.so.0", "lakebase"]
      end

    load_errors = []
    loaded = CANDIDATES.any? do |name|
      ffi_lib name
      true
    rescue LoadError => e
      load_errors << e.message
      false
    end
    unless loaded
      raise LibraryNotFoundError,
            "liblakebase not found (tried #{CANDIDATES.join(', ')}): set LAKEBASE_LIBRARY to the path of " \
            "liblakebase.so, install it (make install) or put it on LD_LIBRARY_PATH. #{load_errors.join('; ')}"
    end

    attach_function :lakebase_get_password, %i[pointer size_t pointer], :int, blocking: true
    attach_function :lakebase_client_new, %i[pointer pointer], :int
    attach_function :lakebase_client_free, [:pointer], :void
    attach_function :lakebase_default_client, [:pointer], :int
    attach_function :lakebase_client_get_password, %i[pointer pointer size_t pointer], :int, blocking: true
    attach_function :lakebase_client_refresh, [:pointer], :int, blocking: true
    attach_function :lakebase_client_token_expiry, %i[pointer pointer], :int
    attach_function :lakebase_client_identity, %i[pointer pointer size_t pointer], :int, blocking: true
    attach_function :lakebase_client_auth_type, %i[pointer pointer size_t pointer], :int
    attach_function :lakebase_client_refresh_error, %i[pointer pointer size_t pointer], :int
    attach_function :lakebase_last_error, %i[pointer size_t], :size_t
    attach_function :lakebase_result_name, [:int], :string
    attach_function :lakebase_version, [], :string

    unless lakebase_version.split(".").first == ABI_MAJOR.to_s
      raise LibraryNotFoundError, "liblakebase #{lakebase_version} is not ABI #{ABI_MAJOR}.x"
    end

    # A first guess that fits a Lakebase token (~1 KB), so a cache hit is one call.
    FIRST_GUESS = 2048

    module_function

    def last_error
      n = lakebase_last_error(nil, 0)
      return "" if n.zero?

      buf = FFI::MemoryPointer.new(:char, n + 1)
      lakebase_last_error(buf, n + 1)
      buf.read_string(n).force_encoding(Encoding::UTF_8)
    end

    def check(result)
      return if result == OK

      klass = ERRORS_BY_CODE.fetch(result, InternalError)
      raise klass.new(last_error, code: result, code_name: lakebase_result_name(result))
    end

    # Copy a (buf, buf_len, out_len) value: sized with the INSUFFICIENT_SIZE protocol, copied into a
    # native buffer that is zeroed once the Ruby string has been made.
    def get_string(size = FIRST_GUESS)
      out = FFI::MemoryPointer.new(:size_t)
      8.times do # the value may grow between calls (a new token); bounded
        buf = FFI::MemoryPointer.new(:char, size)
        begin
          r = yield(buf, size, out)
          return buf.read_string(out.read(:size_t)).force_encoding(Encoding::UTF_8) if r == OK

          check(r) unless r == INSUFFICIENT_SIZE
          size = out.read(:size_t) + 1
        ensure
          buf.clear
        end
      end
      raise InternalError.new("value kept growing while it was being copied", code: 7)
    end
  end
end
