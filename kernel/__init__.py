"""Runtime pieces every trainyard service shares: settings, errors, server, storage, messaging."""
