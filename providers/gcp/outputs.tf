output "failover_service" {
  description = "The service as the failover engine reads it (failover import-terraform DIR, or a from_terraform block in the strategy file)."
  value = {
    name     = var.service
    strategy = var.mode == "wrr" ? "active_active" : "active_passive"
    connections = {
      (var.connection_name) = {
        type    = "clouddns"
        project = var.project
      }
    }
    endpoints = [
      for e in var.endpoints : {
        name   = e.name
        role   = e.role
        region = e.region != null ? e.region : e.location
        weight = e.weight
        probe  = e.probe_url == null ? null : { type = "http", url = e.probe_url }
      }
    ]
    routing = [
      {
        adapter       = "clouddns"
        connection    = var.connection_name
        managed_zone  = google_dns_record_set.this.managed_zone
        record        = google_dns_record_set.this.name
        type          = google_dns_record_set.this.type
        ttl           = var.ttl
        mode          = var.mode == "wrr" ? "weighted" : "primary_backup"
        trickle_ratio = var.mode == "primary_backup" ? var.trickle_ratio : null
        endpoints = {
          for e in var.endpoints : e.name => {
            values   = e.values
            location = e.location
          }
        }
      }
    ]
  }
}

output "record_set_id" {
  description = "ID of the record set (projects/PROJECT/managedZones/ZONE/rrsets/NAME/TYPE)."
  value       = google_dns_record_set.this.id
}

output "record_name" {
  description = "Fully qualified name of the steered record, with the trailing dot."
  value       = google_dns_record_set.this.name
}
