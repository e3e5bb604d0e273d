terraform {
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # Every argument used here has the same name and meaning in 3.x and 4.x.
      version = ">= 3.0, < 5.0"
    }
  }
}
