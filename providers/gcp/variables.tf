variable "service" {
  description = "Name of the service in the failover engine's strategy (the key under `services`)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.service))
    error_message = "service must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (the engine's name rule)."
  }
}

variable "connection_name" {
  description = "Name of the entry under the strategy's `connections` that this module's routing binding uses (a Cloud DNS connection to var.project)."
  type        = string
  default     = "gcp"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.connection_name))
    error_message = "connection_name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "project" {
  description = "ID of the Google Cloud project that holds the managed zone."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project)) || can(regex("^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a Google Cloud project ID (6-30 lowercase letters, digits and hyphens, starting with a letter)."
  }
}

variable "managed_zone" {
  description = "Name of the Cloud DNS managed zone (its resource name, not its DNS name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.managed_zone))
    error_message = "managed_zone must be a managed zone name: lowercase letters, digits and hyphens, starting with a letter, at most 63."
  }
}

variable "record_name" {
  description = "Fully qualified name of the record the engine steers, with the trailing dot (e.g. www.example.com.)."
  type        = string

  validation {
    condition     = endswith(var.record_name, ".") && length(var.record_name) > 1 && !strcontains(var.record_name, " ")
    error_message = "record_name must be a fully qualified DNS name ending with a dot, e.g. www.example.com."
  }
}

variable "record_type" {
  description = "Record type: A or AAAA (primary_backup health-checks IP addresses), or CNAME or TXT in wrr mode."
  type        = string
  default     = "A"

  validation {
    condition     = contains(["A", "AAAA", "CNAME", "TXT"], var.record_type)
    error_message = "record_type must be one of A, AAAA, CNAME, TXT."
  }
}

variable "ttl" {
  description = "TTL of the record set, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.ttl >= 0 && var.ttl <= 2147483647 && floor(var.ttl) == var.ttl
    error_message = "ttl must be a whole number of seconds between 0 and 2147483647."
  }
}

variable "mode" {
  description = "primary_backup: a failover routing policy, the primary endpoint's values as the primary targets and the standbys as backup geo targets (strategy active_passive); wrr: weighted round robin, one item per endpoint (active_active)."
  type        = string
  default     = "primary_backup"

  validation {
    condition     = contains(["primary_backup", "wrr"], var.mode)
    error_message = "mode must be primary_backup or wrr."
  }
}

variable "trickle_ratio" {
  description = "primary_backup only: share of the traffic (0-1) sent to the backup targets while the primary is healthy."
  type        = number
  default     = 0

  validation {
    condition     = var.trickle_ratio >= 0 && var.trickle_ratio <= 1
    error_message = "trickle_ratio must be between 0 and 1."
  }
}

variable "health_check" {
  description = "ID or self link of the google_compute_health_check Cloud DNS uses to check the primary targets (external endpoints); required in primary_backup mode."
  type        = string
  default     = null

  validation {
    condition     = var.health_check == null || can(regex("healthChecks/[^/]+$", var.health_check))
    error_message = "health_check must be a health check ID or self link (…/global/healthChecks/NAME)."
  }
}

variable "endpoints" {
  description = <<-EOT
    Where the service runs, one object per endpoint:
    name (unique), role (primary or standby in primary_backup mode, active in wrr mode), location
    (the GCP region of the endpoint, e.g. us-east1: its backup geo location), values (its rrdatas:
    IP addresses, or one name for CNAME), weight (1-100: its share in wrr mode), region (the
    endpoint's region in the strategy; default location), and probe_url (the http(s) URL the
    engine probes; null: no probe).
  EOT
  type = list(object({
    name      = string
    role      = string
    location  = string
    values    = list(string)
    weight    = optional(number, 100)
    region    = optional(string)
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
    condition     = length(distinct([for e in var.endpoints : e.name])) == length(var.endpoints)
    error_message = "Endpoint names must be unique."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : contains(["primary", "standby", "active"], e.role)])
    error_message = "Every endpoint role must be primary, standby or active."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : can(regex("^[a-z]+-[a-z]+[0-9]+$", e.location))])
    error_message = "Every endpoint location must be a Google Cloud region such as us-east1."
  }

  validation {
    condition     = alltrue([for e in var.endpoints : length(e.values) > 0 && alltrue([for v in e.values : length(trimspace(v)) > 0])])
    error_message = "Every endpoint needs at least one non-empty value."
  }

  validation {
    condition     = length(distinct([for e in var.endpoints : join(",", sort(e.values))])) == length(var.endpoints)
    error_message = "Two endpoints have the same values: the engine could not tell which one is active from the record set."
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
