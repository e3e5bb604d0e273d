output "failover_service" {
  description = "The service as the failover engine reads it (failover import-terraform DIR, or a from_terraform block in the strategy file)."
  value = {
    name     = var.service
    strategy = var.mode == "weighted" ? "active_active" : "active_passive"
    connections = {
      (var.connection_name) = {
        type   = "route53"
        region = data.aws_region.current.name
      }
    }
    endpoints = [
      for e in var.endpoints : {
        name   = e.name
        role   = e.role
        region = e.region
        weight = e.weight
        probe  = e.probe_url == null ? null : { type = "http", url = e.probe_url }
      }
    ]
    routing = [
      {
        adapter        = "route53"
        connection     = var.connection_name
        hosted_zone_id = local.zone_id
        record         = aws_route53_record.this[var.endpoints[0].name].fqdn
        type           = var.record_type
        ttl            = var.ttl
        mode           = var.mode
        endpoints = {
          for e in var.endpoints : e.name => {
            values          = e.values
            set_identifier  = aws_route53_record.this[e.name].set_identifier
            health_check_id = aws_route53_health_check.this[e.name].id
          }
        }
      }
    ]
  }
}

output "record_fqdn" {
  description = "Fully qualified name of the steered record (shared by every endpoint's record)."
  value       = aws_route53_record.this[var.endpoints[0].name].fqdn
}

output "record_ids" {
  description = "Route 53 record IDs, by endpoint name."
  value       = { for name, r in aws_route53_record.this : name => r.id }
}

output "set_identifiers" {
  description = "Set identifier of each endpoint's record, by endpoint name."
  value       = { for name, r in aws_route53_record.this : name => r.set_identifier }
}

output "health_check_ids" {
  description = "Route 53 health check IDs, by endpoint name."
  value       = { for name, hc in aws_route53_health_check.this : name => hc.id }
}

output "hosted_zone_id" {
  description = "ID of the hosted zone that holds the records."
  value       = local.zone_id
}
