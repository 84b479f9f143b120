//! The agent calls a node's `<fence>` section describes: methods in order, devices in order, each device's name=value arguments.
