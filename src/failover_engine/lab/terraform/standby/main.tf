# Stand-in for a pilot-light standby region, managed by Terraform (`failover drill --cloud terraform`).
#
# Real standby infrastructure would be an autoscaling group, a database replica and the Route 53
# records of providers/aws; here terraform_data resources play them (no provider to download),
# and the `failover_service` output has the same shape as providers/aws's, so the engine builds
# the service from it exactly as it would from the real module. The engine promotes the standby
# (`terraform apply -var standby_capacity=2`) before traffic moves to it, and scales it back to 0
# after a failback.

variable "service" {
  description = "Name of the service the engine protects."
  type        = string
  default     = "shop"
}

variable "connection" {
  description = "Name of the Route 53 connection in the strategy file."
  type        = string
  default     = "aws-local"
}

variable "hosted_zone" {
  description = "Route 53 hosted zone name."
  type        = string
  default     = "drill.example."
}

variable "record" {
  description = "Record the engine steers."
  type        = string
  default     = "shop.drill.example."
}

variable "primary_values" {
  description = "Record values of the primary region."
  type        = list(string)
  default     = ["192.0.2.10"]
}

variable "standby_values" {
  description = "Record values of the standby region."
  type        = list(string)
  default     = ["198.51.100.10"]
}

variable "record_ttl" {
  description = "TTL of the service's record (the lab gives 30 s, `failover drill` 1 s so that its clients move within the drill)."
  type        = number
  default     = 30
}

variable "standby_capacity" {
  description = "Instances running in the standby region: 0 while it is a pilot light, more once promoted."
  type        = number
  default     = 0

  validation {
    condition     = var.standby_capacity >= 0 && var.standby_capacity <= 100
    error_message = "standby_capacity must be between 0 and 100."
  }
}

resource "terraform_data" "primary_region" {
  input = {
    region = "us-east-1"
    values = var.primary_values
  }
}

resource "terraform_data" "standby_region" {
  input = {
    region   = "us-west-2"
    values   = var.standby_values
    capacity = var.standby_capacity
  }
}

output "standby_capacity" {
  description = "What the standby runs now (0: pilot light)."
  value       = terraform_data.standby_region.output.capacity
}

output "failover_service" {
  description = "The service as the engine reads it (from_terraform / failover import-terraform)."
  value = {
    name     = var.service
    strategy = "active_passive"
    endpoints = [
      { name = "use1", role = "primary", region = terraform_data.primary_region.output.region },
      { name = "usw2", role = "standby", region = terraform_data.standby_region.output.region },
    ]
    routing = [{
      adapter     = "route53"
      connection  = var.connection
      hosted_zone = var.hosted_zone
      record      = var.record
      type        = "A"
      ttl         = var.record_ttl
      mode        = "failover"
      endpoints = {
        use1 = { values = terraform_data.primary_region.output.values, set_identifier = "use1-primary" }
        usw2 = { values = terraform_data.standby_region.output.values, set_identifier = "usw2-standby" }
      }
    }]
  }
}
