# frozen_string_literal: true

require "etc"
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

    # The copy a platform gem brings (lib/lakebase/native/<os>-<machine>/, e.g. linux-x86_64).
    BUNDLED = File.join(__dir__, "native", "#{Etc.uname[:sysname].downcase}-#{Etc.uname[:machine]}", "liblakebase.so.0")

    # Where to look, in order: $LAKEBASE_LIBRARY (a path; when set, nothing else is tried), the
    # bundled copy, the system loader (liblakebase.so.0: ld.so.cache, LD_LIBRARY_PATH).
    CANDIDATES =
      if ENV["LAKEBASE_LIBRARY"] && !ENV["LAKEBASE_LIBRARY"].empty?
        [ENV["LAKEBASE_LIBRARY"]]
      else
        [*(File.exist?(BUNDLED) ? [BUNDLED] : []), "liblakebase.so.0", "lakebase"]
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
    attach_function :lakebase_client_refresh_rejected, %i[pointer pointer], :int, blocking: true
    attach_function :lakebase_client_token_expiry, %i[pointer pointer], :int
    attach_function :lakebase_client_identity, %i[pointer pointer size_t pointer], :int, blocking: true
    attach_function :lakebase_client_postgres_role, %i[pointer pointer size_t pointer], :int, blocking: true
    attach_function :lakebase_client_postgres_host, %i[pointer pointer size_t pointer], :int, blocking: true
    attach_function :lakebase_connect_retry_delay, %i[string string int uint32 int64 string pointer], :int
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

    # lakebase_connect_retry_delay: milliseconds to wait before repeating a failed connect, or nil to
    # give up (the library's policy for endpoints waking from scale-to-zero; budget
    # LAKEBASE_CONNECT_RETRY, else connect_timeout, else 10 s).
    def connect_retry_delay(sqlstate, message, password_asked, failed_attempts, elapsed_ms, connect_timeout)
      out = FFI::MemoryPointer.new(:int64)
      check(lakebase_connect_retry_delay(sqlstate, message&.b&.delete("\0"), password_asked ? 1 : 0,
                                         [failed_attempts, 1].max, [elapsed_ms, 0].max, connect_timeout&.to_s, out))
      v = out.read(:int64)
      v.negative? ? nil : v
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
