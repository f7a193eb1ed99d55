"""How trainyard runs: the local one-machine stack and cluster manifests."""
