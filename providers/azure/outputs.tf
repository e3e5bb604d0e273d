output "failover_service" {
  description = "The service as the failover engine reads it (failover import-terraform DIR, or a from_terraform block in the strategy file)."
  value = {
    name     = var.service
    strategy = var.routing_method == "Weighted" ? "active_active" : "active_passive"
    connections = {
      (var.connection_name) = {
        type            = "trafficmanager"
        subscription_id = data.azurerm_client_config.current.subscription_id
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
        adapter        = "trafficmanager"
        connection     = var.connection_name
        resource_group = azurerm_traffic_manager_profile.this.resource_group_name
        profile        = azurerm_traffic_manager_profile.this.name
        mode           = var.routing_method == "Weighted" ? "weighted" : "priority"
        endpoints = {
          for e in var.endpoints : e.name => {
            endpoint      = azurerm_traffic_manager_external_endpoint.this[e.name].name
            endpoint_type = "ExternalEndpoints"
          }
        }
      }
    ]
  }
}

output "profile_fqdn" {
  description = "FQDN the profile answers at (<relative_dns_name>.trafficmanager.net): point the service's CNAME here."
  value       = azurerm_traffic_manager_profile.this.fqdn
}

output "profile_id" {
  description = "Resource ID of the Traffic Manager profile."
  value       = azurerm_traffic_manager_profile.this.id
}

output "endpoint_ids" {
  description = "Resource IDs of the external endpoints, by endpoint name."
  value       = { for name, ep in azurerm_traffic_manager_external_endpoint.this : name => ep.id }
}
