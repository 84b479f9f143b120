//! Running fence agents: search path, name=value lines on stdin, a timeout per call.
