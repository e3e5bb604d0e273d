# Route 53 records for one service, steered by the failover engine.
#
# Terraform creates the records and their health checks; the engine then decides which endpoint
# is active by rewriting the routing policy of the records (failover: which record is PRIMARY;
# weighted: the weights). Those attributes are in ignore_changes so that the next
# `terraform apply` does not undo a failover. See README.md, "Ownership split".

data "aws_region" "current" {}

data "aws_route53_zone" "this" {
  count = var.hosted_zone_id == null ? 1 : 0

  name         = var.hosted_zone_name
  private_zone = var.private_zone
}

locals {
  zone_id   = var.hosted_zone_id != null ? trimprefix(var.hosted_zone_id, "/hostedzone/") : data.aws_route53_zone.this[0].zone_id
  endpoints = { for e in var.endpoints : e.name => e }

  primaries = [for e in var.endpoints : e.name if e.role == "primary"]
  standbys  = [for e in var.endpoints : e.name if e.role == "standby"]
  members   = [for e in var.endpoints : e.name if e.role == "active"]

  # The health check of each endpoint, its target defaulting to the endpoint's first value.
  ip_records = contains(["A", "AAAA"], var.record_type)
  health_checks = {
    for e in var.endpoints : e.name => {
      type              = e.health_check.type
      ip_address        = e.health_check.ip_address != null ? e.health_check.ip_address : (e.health_check.fqdn == null && local.ip_records ? e.values[0] : null)
      fqdn              = e.health_check.fqdn != null ? e.health_check.fqdn : (e.health_check.ip_address == null && var.record_type == "CNAME" ? trimsuffix(e.values[0], ".") : null)
      port              = e.health_check.port != null ? e.health_check.port : lookup({ HTTPS = 443, HTTP = 80 }, e.health_check.type, null)
      resource_path     = e.health_check.type == "TCP" ? null : e.health_check.resource_path
      failure_threshold = e.health_check.failure_threshold
      request_interval  = e.health_check.request_interval
    }
  }
}

resource "aws_route53_health_check" "this" {
  for_each = local.health_checks

  type              = each.value.type
  fqdn              = each.value.fqdn
  ip_address        = each.value.ip_address
  port              = each.value.port
  resource_path     = each.value.resource_path
  failure_threshold = each.value.failure_threshold
  request_interval  = each.value.request_interval

  tags = merge(var.tags, { Name = "${var.service}-${each.key}" })

  lifecycle {
    precondition {
      condition     = each.value.fqdn != null || each.value.ip_address != null
      error_message = "Endpoint ${each.key}: give health_check.fqdn or health_check.ip_address (they default to the first value only for A, AAAA and CNAME records)."
    }
  }
}

# The engine owns the routing policy blocks (ignore_changes below), so a change of mode could not
# reach existing records: it replaces them instead.
resource "terraform_data" "mode" {
  input = var.mode
}

resource "aws_route53_record" "this" {
  for_each = local.endpoints

  zone_id         = local.zone_id
  name            = var.record_name
  type            = var.record_type
  ttl             = var.ttl
  records         = each.value.values
  set_identifier  = coalesce(each.value.set_identifier, each.key)
  health_check_id = aws_route53_health_check.this[each.key].id

  # Initial state only: the engine owns these blocks once the records exist.
  dynamic "failover_routing_policy" {
    for_each = var.mode == "failover" ? [each.value.role == "primary" ? "PRIMARY" : "SECONDARY"] : []
    content {
      type = failover_routing_policy.value
    }
  }

  dynamic "weighted_routing_policy" {
    for_each = var.mode == "weighted" ? [each.value.weight] : []
    content {
      weight = weighted_routing_policy.value
    }
  }

  lifecycle {
    # The engine switches these (route53 adapter: Failover PRIMARY/SECONDARY, or Weight);
    # Terraform must not revert a failover on its next apply.
    ignore_changes       = [failover_routing_policy, weighted_routing_policy]
    replace_triggered_by = [terraform_data.mode]

    precondition {
      condition     = var.hosted_zone_id != null || var.hosted_zone_name != null
      error_message = "Set hosted_zone_id or hosted_zone_name."
    }

    precondition {
      condition     = var.mode != "failover" || (length(var.endpoints) == 2 && length(local.primaries) == 1 && length(local.standbys) == 1)
      error_message = "failover mode takes exactly two endpoints: one with role primary and one with role standby."
    }

    precondition {
      condition     = var.mode != "weighted" || length(local.members) == length(var.endpoints)
      error_message = "weighted mode is active-active: every endpoint needs role active."
    }

    precondition {
      condition     = var.record_type != "CNAME" || alltrue([for e in var.endpoints : length(e.values) == 1])
      error_message = "A CNAME record has exactly one value per endpoint."
    }
  }
}
