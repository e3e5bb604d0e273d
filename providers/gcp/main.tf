# A Cloud DNS record set for one service, steered by the failover engine.
#
# Terraform creates the record set with its routing policy; the engine then decides which
# endpoint is active by rewriting the routing policy (primary_backup: which endpoint's values are
# the primary targets and which are backup geo targets, and the trickle ratio; wrr: the weights).
# routing_policy is therefore in ignore_changes, so that the next `terraform apply` does not undo
# a failover. See README.md, "Ownership split".

locals {
  primaries = [for e in var.endpoints : e if e.role == "primary"]
  standbys  = [for e in var.endpoints : e if e.role == "standby"]
  members   = [for e in var.endpoints : e if e.role == "active"]
}

# The engine owns routing_policy (ignore_changes below), so a change of mode could not reach the
# existing record set: it replaces it instead.
resource "terraform_data" "mode" {
  input = var.mode
}

resource "google_dns_record_set" "this" {
  project      = var.project
  managed_zone = var.managed_zone
  name         = var.record_name
  type         = var.record_type
  ttl          = var.ttl

  # Initial state only: the engine owns the routing policy once the record set exists.
  routing_policy {
    health_check = var.health_check

    dynamic "primary_backup" {
      for_each = var.mode == "primary_backup" ? [1] : []
      content {
        trickle_ratio = var.trickle_ratio

        primary {
          external_endpoints = flatten([for e in local.primaries : e.values])
        }

        dynamic "backup_geo" {
          for_each = local.standbys
          content {
            location = backup_geo.value.location
            rrdatas  = backup_geo.value.values
          }
        }
      }
    }

    dynamic "wrr" {
      for_each = var.mode == "wrr" ? var.endpoints : []
      content {
        weight  = wrr.value.weight
        rrdatas = wrr.value.values
      }
    }
  }

  lifecycle {
    # The engine switches the routing policy (clouddns adapter: primary targets vs backup geo
    # targets and trickle ratio, or WRR weights); Terraform must not revert a failover.
    ignore_changes       = [routing_policy]
    replace_triggered_by = [terraform_data.mode]

    precondition {
      condition     = var.mode != "primary_backup" || (length(local.primaries) == 1 && length(local.standbys) >= 1 && length(local.members) == 0)
      error_message = "primary_backup mode takes one endpoint with role primary and at least one with role standby."
    }

    precondition {
      condition     = var.mode != "primary_backup" || contains(["A", "AAAA"], var.record_type)
      error_message = "primary_backup health-checks its primary targets (IP addresses): record_type must be A or AAAA."
    }

    precondition {
      condition     = var.mode != "primary_backup" || var.health_check != null
      error_message = "primary_backup mode needs health_check: the health check Cloud DNS runs against the primary targets."
    }

    precondition {
      condition     = var.mode != "primary_backup" || length(distinct([for e in var.endpoints : e.location])) == length(var.endpoints)
      error_message = "primary_backup mode needs a distinct location per endpoint: any endpoint can become a backup geo target."
    }

    precondition {
      condition     = var.mode != "wrr" || length(local.members) == length(var.endpoints)
      error_message = "wrr mode is active-active: every endpoint needs role active."
    }

    precondition {
      condition     = var.mode == "primary_backup" || var.trickle_ratio == 0
      error_message = "trickle_ratio applies to primary_backup mode only."
    }

    precondition {
      condition     = var.record_type != "CNAME" || alltrue([for e in var.endpoints : length(e.values) == 1])
      error_message = "A CNAME record has exactly one value per endpoint."
    }
  }
}
