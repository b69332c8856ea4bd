"""The daemon's server: transport (sockets), protocol engine (decode, verify, dispatch), registry and jobs."""
