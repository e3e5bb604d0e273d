terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # routing_policy.health_check and primary_backup.primary.external_endpoints arrived in 6.16.0
      version = ">= 6.16, < 8.0"
    }
  }
}
