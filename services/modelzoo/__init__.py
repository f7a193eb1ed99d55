"""The model zoo service: a catalog of pre-trained networks and a store of their weights."""
