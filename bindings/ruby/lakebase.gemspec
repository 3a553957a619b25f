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
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 2.7"
  s.add_dependency "ffi", "~> 1.15"
  # pg is optional: `require "lakebase/pg"` needs it.
  s.metadata = { "rubygems_mfa_required" => "true" }
end
