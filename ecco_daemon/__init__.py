"""ecco-daemon: holds language models in memory and serves Ecco's analyses over msgpack/ZeroMQ."""

__version__ = "0.1.0"
