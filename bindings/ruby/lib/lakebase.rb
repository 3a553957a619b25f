# frozen_string_literal: true

# Rotating Databricks Lakebase OAuth passwords through liblakebase (ruby-ffi). The library caches
# and refreshes tokens and resolves configuration like the Databricks SDKs; this gem only calls it.
#
#   require "lakebase"
#   Lakebase.password                                        # default client (DATABRICKS_*, LAKEBASE_*, ~/.databrickscfg)
#   client = Lakebase::Client.new(profile: "prod", instance: "my-db")
#   require "lakebase/pg"; conn = Lakebase::PG.connect(client, host: "...", dbname: "databricks_postgres")
module Lakebase
end

require_relative "lakebase/version"
require_relative "lakebase/errors"
require_relative "lakebase/native"
require_relative "lakebase/client"
