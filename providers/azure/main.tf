# An Azure Traffic Manager profile with one external endpoint per service endpoint, steered by
# the failover engine.
#
# Terraform creates the profile (DNS and monitor settings) and the endpoints (names, targets);
# the engine then decides which endpoint is active by patching the endpoints (Priority: their
# priorities; Weighted: their weights; any method: enabled/disabled). Those attributes are in
# ignore_changes so that the next `terraform apply` does not undo a failover. See README.md,
# "Ownership split".

data "azurerm_client_config" "current" {}

locals {
  primaries = [for e in var.endpoints : e.name if e.role == "primary"]
  standbys  = [for e in var.endpoints : e.name if e.role == "standby"]
  members   = [for e in var.endpoints : e.name if e.role == "active"]

  # Priority routing: the primary first (1), then the standbys (2, 3, ...) in declared order, the
  # order in which the engine ranks them (it puts the bindings Terraform outputs, sorted by name,
  # back in the endpoints' declared order), so the engine reads the initial state as "primary
  # active" unchanged. Weighted routing: the members 1, 2, 3, ... in declared order too (see the
  # endpoint's priority below).
  priorities = { for i, name in concat(local.primaries, local.standbys, local.members) : name => i + 1 }
  endpoints  = { for e in var.endpoints : e.name => e }
}

resource "azurerm_traffic_manager_profile" "this" {
  name                   = var.profile_name
  resource_group_name    = var.resource_group_name
  traffic_routing_method = var.routing_method

  dns_config {
    relative_name = var.relative_dns_name
    ttl           = var.ttl
  }

  monitor_config {
    protocol                     = var.monitor.protocol
    port                         = var.monitor.port
    path                         = var.monitor.protocol == "TCP" ? null : var.monitor.path
    expected_status_code_ranges  = var.monitor.protocol == "TCP" ? null : var.monitor.expected_status_code_ranges
    interval_in_seconds          = var.monitor.interval_in_seconds
    timeout_in_seconds           = var.monitor.timeout_in_seconds
    tolerated_number_of_failures = var.monitor.tolerated_number_of_failures

    dynamic "custom_header" {
      for_each = var.monitor.custom_headers
      content {
        name  = custom_header.key
        value = custom_header.value
      }
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.routing_method != "Priority" || (length(local.primaries) == 1 && length(local.standbys) >= 1 && length(local.members) == 0)
      error_message = "Priority routing takes one endpoint with role primary and at least one with role standby."
    }

    precondition {
      condition     = var.routing_method != "Weighted" || length(local.members) == length(var.endpoints)
      error_message = "Weighted routing is active-active: every endpoint needs role active."
    }
  }
}

resource "azurerm_traffic_manager_external_endpoint" "this" {
  for_each = local.endpoints

  name       = each.key
  profile_id = azurerm_traffic_manager_profile.this.id
  target     = each.value.target

  # Initial state only: the engine owns these once the endpoint exists.
  # Always set, Weighted included: azurerm 4.0.x gives every endpoint priority 1 when priority is
  # null (provider issue 27275, reverted in PR 27966), and Traffic Manager refuses two endpoints of
  # a profile with the same priority.
  priority = local.priorities[each.key]
  weight   = var.routing_method == "Weighted" ? each.value.weight * 10 : null
  enabled  = true

  lifecycle {
    # The engine switches these (trafficmanager adapter: priority, weight, endpointStatus);
    # Terraform must not revert a failover on its next apply.
    ignore_changes = [priority, weight, enabled]
    # ... and since it ignores them, a new routing method gets fresh endpoints.
    replace_triggered_by = [azurerm_traffic_manager_profile.this.traffic_routing_method]
  }
}
