# frozen_string_literal: true

module Lakebase
  VERSION = "0.1.0"
end
