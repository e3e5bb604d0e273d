variable "service" {
  description = "Name of the service in the failover engine's strategy (the key under `services`); also used in the health checks' Name tags."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.service))
    error_message = "service must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (the engine's name rule)."
  }
}

variable "connection_name" {
  description = "Name of the entry under the strategy's `connections` that this module's routing binding uses (a Route 53 connection in the provider's region)."
  type        = string
  default     = "aws"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.connection_name))
    error_message = "connection_name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "hosted_zone_id" {
  description = "ID of the Route 53 hosted zone that holds the record (e.g. Z0123456789ABCDEFGHIJ). Null: the zone is looked up by hosted_zone_name."
  type        = string
  default     = null

  validation {
    condition     = var.hosted_zone_id == null || can(regex("^(/hostedzone/)?[A-Z0-9]{1,32}$", var.hosted_zone_id))
    error_message = "hosted_zone_id must be a Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ."
  }
}

variable "hosted_zone_name" {
  description = "Name of the hosted zone (e.g. example.com). Used to look the zone up when hosted_zone_id is null; one of the two must be set."
  type        = string
  default     = null

  validation {
    condition     = var.hosted_zone_name == null || can(regex("^[A-Za-z0-9_.-]+\\.?$", var.hosted_zone_name))
    error_message = "hosted_zone_name must be a DNS name such as example.com."
  }
}

variable "private_zone" {
  description = "Whether the zone looked up by hosted_zone_name is a private hosted zone."
  type        = bool
  default     = false
}

variable "record_name" {
  description = "Name of the record the engine steers, relative to the zone (\"www\") or fully qualified (\"www.example.com\")."
  type        = string

  validation {
    condition     = length(trimspace(var.record_name)) > 0 && !strcontains(var.record_name, " ")
    error_message = "record_name must be a DNS name without spaces."
  }
}

variable "record_type" {
  description = "Record type: A, AAAA, CNAME or TXT (the types the engine switches)."
  type        = string
  default     = "A"

  validation {
    condition     = contains(["A", "AAAA", "CNAME", "TXT"], var.record_type)
    error_message = "record_type must be one of A, AAAA, CNAME, TXT."
  }
}

variable "ttl" {
  description = "TTL of the records, in seconds. Resolvers cache an answer this long, so it bounds how fast a failover is seen."
  type        = number
  default     = 60

  validation {
    condition     = var.ttl >= 0 && var.ttl <= 2147483647 && floor(var.ttl) == var.ttl
    error_message = "ttl must be a whole number of seconds between 0 and 2147483647."
  }
}

variable "mode" {
  description = "failover: one PRIMARY and one SECONDARY failover record (service strategy active_passive); weighted: one weighted record per endpoint (active_active)."
  type        = string
  default     = "failover"

  validation {
    condition     = contains(["failover", "weighted"], var.mode)
    error_message = "mode must be failover or weighted."
  }
}

variable "endpoints" {
  description = <<-EOT
    Where the service runs, one object per endpoint:
    name (unique; also the record's set_identifier unless set_identifier is given), role
    (primary or standby in failover mode, active in weighted mode), region (where the endpoint
    runs, e.g. us-east-1), values (its record values: IPs, or one host name for CNAME), weight
    (1-100: its share in weighted mode; ignored in failover mode), probe_url (the http(s) URL
    the engine probes; null: no probe), and health_check (the Route 53 health check: type
    HTTPS, HTTP or TCP; fqdn or ip_address, default the first value for A/AAAA and CNAME
    records; port, default 443/80 by type, required for TCP; resource_path; failure_threshold
    1-10; request_interval 10 or 30).
  EOT
  type = list(object({
    name           = string
    role           = string
    region         = string
    values         = list(string)
    weight         = optional(number, 100)
    set_identifier = optional(string)
    probe_url      = optional(string)
    health_check = optional(object({
      type              = optional(string, "HTTPS")
      fqdn              = optional(string)
      ip_address        = optional(string)
      port              = optional(number)
      resource_path     = optional(string, "/")
      failure_threshold = optional(number, 3)
      request_interval  = optional(number, 30)
    }), {})
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
    condition     = length(distinct([for e in var.endpoints : e.name])) == length(var.endpoints)
    error_message = "Endpoint names must be unique."
  }

  validation {
    condition     = length(distinct([for e in var.endpoints : coalesce(e.set_identifier, e.name)])) == length(var.endpoints)
    error_message = "Set identifiers (set_identifier, default the endpoint name) must be unique."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : contains(["primary", "standby", "active"], e.role)])
    error_message = "Every endpoint role must be primary, standby or active."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : length(trimspace(e.region)) > 0])
    error_message = "Every endpoint needs a region."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : length(e.values) > 0 && alltrue([for v in e.values : length(trimspace(v)) > 0])])
    error_message = "Every endpoint needs at least one non-empty value."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : e.weight >= 1 && e.weight <= 100 && floor(e.weight) == e.weight])
    error_message = "Every endpoint weight must be a whole number from 1 to 100."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : e.probe_url == null || can(regex("^https?://\\S+$", e.probe_url))])
    error_message = "probe_url must be an http:// or https:// URL."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : contains(["HTTPS", "HTTP", "TCP"], e.health_check.type)])
    error_message = "health_check.type must be HTTPS, HTTP or TCP."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : e.health_check.port == null ? e.health_check.type != "TCP" : (e.health_check.port >= 1 && e.health_check.port <= 65535 && floor(e.health_check.port) == e.health_check.port)])
    error_message = "health_check.port must be 1-65535, and is required for TCP health checks."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : startswith(coalesce(e.health_check.resource_path, "?"), "/")])
    error_message = "health_check.resource_path must start with '/'."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : e.health_check.failure_threshold >= 1 && e.health_check.failure_threshold <= 10 && floor(e.health_check.failure_threshold) == e.health_check.failure_threshold])
    error_message = "health_check.failure_threshold must be a whole number from 1 to 10."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : contains([10, 30], e.health_check.request_interval)])
    error_message = "health_check.request_interval must be 10 or 30 (seconds)."
  }
}

variable "tags" {
  description = "Tags added to the health checks (each also gets Name = <service>-<endpoint>)."
  type        = map(string)
  default     = {}
}
