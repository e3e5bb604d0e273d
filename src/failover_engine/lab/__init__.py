"""The local lab: a moto server plays Route 53, local HTTP servers play the regions."""
