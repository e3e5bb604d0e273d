variable "service" {
  description = "Name of the service in the failover engine's strategy (the key under `services`)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.service))
    error_message = "service must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (the engine's name rule)."
  }
}

variable "connection_name" {
  description = "Name of the entry under the strategy's `connections` that this module's routing binding uses (a Traffic Manager connection to the provider's subscription)."
  type        = string
  default     = "azure"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.connection_name))
    error_message = "connection_name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "resource_group_name" {
  description = "Name of the existing resource group that holds the Traffic Manager profile."
  type        = string

  validation {
    condition     = can(regex("^[-\\w.()]{0,89}[-\\w()]$", var.resource_group_name))
    error_message = "resource_group_name must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'."
  }
}

variable "profile_name" {
  description = "Name of the Traffic Manager profile (the engine's `profile`)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.profile_name))
    error_message = "profile_name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "relative_dns_name" {
  description = "Relative DNS name of the profile: the profile answers at <relative_dns_name>.trafficmanager.net (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", var.relative_dns_name))
    error_message = "relative_dns_name must be a DNS label: 1-63 letters, digits or '-', not starting or ending with '-'."
  }
}

variable "routing_method" {
  description = "Traffic routing method of the profile: Priority (the primary answers, standbys behind it; strategy active_passive) or Weighted (every endpoint by weight; active_active)."
  type        = string
  default     = "Priority"

  validation {
    condition     = contains(["Priority", "Weighted"], var.routing_method)
    error_message = "routing_method must be Priority or Weighted."
  }
}

variable "ttl" {
  description = "DNS TTL of the profile's answers, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.ttl >= 0 && var.ttl <= 2147483647 && floor(var.ttl) == var.ttl
    error_message = "ttl must be a whole number of seconds between 0 and 2147483647."
  }
}

variable "monitor" {
  description = <<-EOT
    How Traffic Manager health-checks the endpoints: protocol (HTTP, HTTPS or TCP), port, path
    (HTTP/HTTPS only), expected_status_code_ranges (e.g. ["200-299"]; HTTP/HTTPS only),
    interval_in_seconds (10 or 30), timeout_in_seconds (5-10, below 10 with a 10 s interval),
    tolerated_number_of_failures (0-9) and custom_headers (e.g. { host = "www.example.com" }).
  EOT
  type = object({
    protocol                     = optional(string, "HTTPS")
    port                         = optional(number, 443)
    path                         = optional(string, "/")
    expected_status_code_ranges  = optional(list(string), [])
    interval_in_seconds          = optional(number, 30)
    timeout_in_seconds           = optional(number, 10)
    tolerated_number_of_failures = optional(number, 3)
    custom_headers               = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = contains(["HTTP", "HTTPS", "TCP"], var.monitor.protocol)
    error_message = "monitor.protocol must be HTTP, HTTPS or TCP."
  }

  validation {
    condition     = var.monitor.port >= 1 && var.monitor.port <= 65535 && floor(var.monitor.port) == var.monitor.port
    error_message = "monitor.port must be 1-65535."
  }

  validation {
    condition     = var.monitor.protocol == "TCP" || startswith(coalesce(var.monitor.path, "?"), "/")
    error_message = "monitor.path must start with '/' for HTTP and HTTPS monitoring."
  }

  validation {
    condition     = alltrue([for r in var.monitor.expected_status_code_ranges : can(regex("^[1-5][0-9][0-9]-[1-5][0-9][0-9]$", r))])
    error_message = "monitor.expected_status_code_ranges items look like \"200-299\"."
  }

  validation {
    condition     = contains([10, 30], var.monitor.interval_in_seconds)
    error_message = "monitor.interval_in_seconds must be 10 or 30."
  }

  validation {
    condition     = var.monitor.timeout_in_seconds >= 5 && var.monitor.timeout_in_seconds <= (var.monitor.interval_in_seconds == 10 ? 9 : 10) && floor(var.monitor.timeout_in_seconds) == var.monitor.timeout_in_seconds
    error_message = "monitor.timeout_in_seconds must be 5-10 (5-9 with a 10 s interval)."
  }

  validation {
    condition     = var.monitor.tolerated_number_of_failures >= 0 && var.monitor.tolerated_number_of_failures <= 9 && floor(var.monitor.tolerated_number_of_failures) == var.monitor.tolerated_number_of_failures
    error_message = "monitor.tolerated_number_of_failures must be 0-9."
  }
}

variable "endpoints" {
  description = <<-EOT
    Where the service runs, one external endpoint each:
    name (unique; the Traffic Manager endpoint's name), role (primary or standby with Priority
    routing: the primary gets priority 1, the standbys 2, 3, ... in declared order, as the
    engine ranks them; active with Weighted routing, priorities 1, 2, 3, ... in declared order), target (the endpoint's FQDN or
    IP address), region (where it runs, e.g. eastus), weight (1-100: its share with Weighted
    routing; the endpoint gets weight x 10 so that the engine's default active_weight of 1000
    reads it back as this share), and probe_url (the http(s) URL the engine probes; null: no
    probe).
  EOT
  type = list(object({
    name      = string
    role      = string
    target    = string
    region    = string
    weight    = optional(number, 100)
    probe_url = optional(string)
  }))

  validation {
    condition     = length(var.endpoints) >= 2
    error_message = "endpoints needs at least two endpoints."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", e.name))])
    error_message = "Every endpoint name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }

  validation {
    condition     = length(distinct([for e in var.endpoints : lower(e.name)])) == length(var.endpoints)
    error_message = "Endpoint names must be unique (Traffic Manager compares them without case)."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : contains(["primary", "standby", "active"], e.role)])
    error_message = "Every endpoint role must be primary, standby or active."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : length(trimspace(e.target)) > 0 && length(trimspace(e.region)) > 0])
    error_message = "Every endpoint needs a target and a region."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : e.weight >= 1 && e.weight <= 100 && floor(e.weight) == e.weight])
    error_message = "Every endpoint weight must be a whole number from 1 to 100."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : e.probe_url == null || can(regex("^https?://\\S+$", e.probe_url))])
    error_message = "probe_url must be an http:// or https:// URL."
  }
}

variable "tags" {
  description = "Tags of the Traffic Manager profile."
  type        = map(string)
  default     = {}
}
