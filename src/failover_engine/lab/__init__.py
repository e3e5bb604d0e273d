"""The local lab: a moto server plays Route 53, the package's emulators (:mod:`.emulators`) play Cloud
DNS, Traffic Manager and ARC zonal shift, local HTTP servers play the regions."""
