"""The Redis backend: the wire (RESP, one transport for standalone, Cluster and
Sentinel), the Lua scripts that make each state change atomic, and the queue on top."""
