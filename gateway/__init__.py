"""The gateway: trainyard's one front door (authn, tenancy, limits, routing to the services)."""
