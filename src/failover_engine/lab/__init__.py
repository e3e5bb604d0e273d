"""The local lab: a moto server plays Route 53, the checkout's emulators play Cloud DNS and
Traffic Manager, local HTTP servers play the regions."""
