terraform {
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The arguments used here have the same names in 3.x and 4.x. Defaults differ: 4.0.x gives
      # an endpoint with a null priority priority 1 (issue 27275, reverted in PR 27966), so
      # main.tf always sets priority.
      version = ">= 3.0, < 5.0"
    }
  }
}
