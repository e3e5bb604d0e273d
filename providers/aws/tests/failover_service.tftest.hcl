# `terraform test` (Terraform >= 1.7): plans and applies the module against a mocked AWS provider
# (no credentials, no API calls) and checks the records and the failover_service output.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }

  mock_resource "aws_route53_record" {
    defaults = {
      fqdn = "www.example.com"
    }
  }
}

variables {
  service        = "shop"
  hosted_zone_id = "Z0123456789ABCDEFGHIJ"
  record_name    = "www"
  endpoints = [
    {
      name      = "use1"
      role      = "primary"
      region    = "us-east-1"
      values    = ["192.0.2.10"]
      probe_url = "https://use1.example.com/health"
      health_check = {
        fqdn          = "use1.example.com"
        resource_path = "/health"
      }
    },
    {
      name   = "usw2"
      role   = "standby"
      region = "us-west-2"
      values = ["198.51.100.10"]
    },
  ]
}

run "failover_mode" {
  command = apply

  assert {
    condition     = aws_route53_record.this["use1"].failover_routing_policy[0].type == "PRIMARY" && aws_route53_record.this["usw2"].failover_routing_policy[0].type == "SECONDARY"
    error_message = "the primary endpoint's record must start as PRIMARY, the standby's as SECONDARY"
  }

  assert {
    condition     = aws_route53_record.this["use1"].set_identifier == "use1" && length(aws_route53_record.this["use1"].weighted_routing_policy) == 0
    error_message = "set_identifier defaults to the endpoint name; no weighted policy in failover mode"
  }

  assert {
    condition     = aws_route53_health_check.this["use1"].fqdn == "use1.example.com" && aws_route53_health_check.this["use1"].port == 443 && aws_route53_health_check.this["use1"].resource_path == "/health"
    error_message = "explicit health check settings are used, port defaulting to 443 for HTTPS"
  }

  assert {
    condition     = aws_route53_health_check.this["usw2"].ip_address == "198.51.100.10" && aws_route53_health_check.this["usw2"].fqdn == null
    error_message = "the health check target defaults to the first value of an A record"
  }

  assert {
    condition     = output.failover_service.strategy == "active_passive" && output.failover_service.connections.aws.type == "route53" && output.failover_service.connections.aws.region == "eu-west-1"
    error_message = "failover mode is an active_passive service with a route53 connection named aws"
  }

  assert {
    condition     = output.failover_service.routing[0].mode == "failover" && output.failover_service.routing[0].record == "www.example.com" && output.failover_service.routing[0].hosted_zone_id == "Z0123456789ABCDEFGHIJ"
    error_message = "the routing binding names the zone, the record and the mode"
  }

  assert {
    condition     = output.failover_service.routing[0].endpoints.usw2.health_check_id == aws_route53_health_check.this["usw2"].id && output.failover_service.routing[0].endpoints.usw2.set_identifier == "usw2"
    error_message = "each endpoint binding carries its record's set_identifier and health check"
  }

  assert {
    condition     = output.failover_service.endpoints[0].probe.url == "https://use1.example.com/health" && output.failover_service.endpoints[1].probe == null
    error_message = "probe comes from probe_url, null without one"
  }
}

run "weighted_mode" {
  command = apply

  variables {
    mode            = "weighted"
    connection_name = "aws-prod"
    endpoints = [
      { name = "use1", role = "active", region = "us-east-1", values = ["192.0.2.10"], weight = 60 },
      { name = "usw2", role = "active", region = "us-west-2", values = ["198.51.100.10"], weight = 40, set_identifier = "west", health_check = { type = "TCP", port = 5432 } },
    ]
  }

  assert {
    condition     = aws_route53_record.this["use1"].weighted_routing_policy[0].weight == 60 && length(aws_route53_record.this["use1"].failover_routing_policy) == 0
    error_message = "weighted records start with the endpoints' weights"
  }

  assert {
    condition     = aws_route53_health_check.this["usw2"].type == "TCP" && aws_route53_health_check.this["usw2"].resource_path == null
    error_message = "TCP health checks have no resource path"
  }

  assert {
    condition     = output.failover_service.strategy == "active_active" && output.failover_service.routing[0].mode == "weighted" && output.failover_service.routing[0].connection == "aws-prod"
    error_message = "weighted mode is an active_active service"
  }

  assert {
    condition     = output.failover_service.routing[0].endpoints.usw2.set_identifier == "west" && output.failover_service.endpoints[1].weight == 40
    error_message = "set_identifier and weight are passed through"
  }
}

run "failover_mode_needs_a_primary_and_a_standby" {
  command = plan

  variables {
    endpoints = [
      { name = "a", role = "primary", region = "us-east-1", values = ["192.0.2.10"] },
      { name = "b", role = "primary", region = "us-west-2", values = ["198.51.100.10"] },
    ]
  }

  expect_failures = [aws_route53_record.this]
}

run "rejects_a_bad_request_interval" {
  command = plan

  variables {
    endpoints = [
      { name = "a", role = "primary", region = "us-east-1", values = ["192.0.2.10"], health_check = { request_interval = 20 } },
      { name = "b", role = "standby", region = "us-west-2", values = ["198.51.100.10"] },
    ]
  }

  expect_failures = [var.endpoints]
}
