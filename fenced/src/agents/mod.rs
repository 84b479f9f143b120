//! Fence agents: the agent side of the standard protocol, and our agents.
