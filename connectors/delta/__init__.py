"""French customs DELTA-G: the sandbox that plays customs clearance against the hub's certificate registry."""
