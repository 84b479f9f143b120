//! Fencing: the fence domain's decision core (who is a victim, who fences, retries,
//! acknowledgements) and the plan of agent calls a node's `<fence>` section describes.

pub mod plan;
