//! The lab: multi-node clusters on one machine, fault injection, history checkers.
