"""The Beam stages of the data flow (Read, Profile, Check, Fit, Normalize, WriteShards, WriteQuarantine,
Statistics) and the graph that wires them (graph.build)."""
