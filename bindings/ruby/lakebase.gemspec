# frozen_string_literal: true

require_relative "lib/lakebase/version"

Gem::Specification.new do |s|
  s.name        = "lakebase"
  s.version     = Lakebase::VERSION
  s.summary     = "Rotating Databricks Lakebase OAuth passwords for pg, Sequel and ActiveRecord (FFI binding of liblakebase)"
  s.description = "Thin ruby-ffi binding of liblakebase: the library caches and refreshes Lakebase tokens and " \
                  "reads Databricks configuration like the SDKs; this gem calls it for every new connection."
  s.authors     = ["liblakebase contributors"]
  s.license     = "Apache-2.0"
  s.files       = Dir["lib/**/*.rb"] + ["README.md", "lakebase.gemspec"]
  # `make dist` puts the library into lib/lakebase/native/<os>-<machine>/: a platform gem that
  # brings it along (the loader takes it before a system one). Without it, a source gem that
  # needs liblakebase installed (or LAKEBASE_LIBRARY).
  native = Dir["lib/lakebase/native/*/liblakebase.so.0"]
  unless native.empty?
    s.files += native
    s.platform = Gem::Platform.local
  end
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 2.7"
  s.add_dependency "ffi", "~> 1.15"
  # pg is optional: `require "lakebase/pg"` needs it.
  s.homepage    = "https://github.com/liblakebase/liblakebase"
  s.metadata = { "rubygems_mfa_required" => "true" }
end
