//! cmand's state as the fence core's inputs (the connection itself is clusterio's CmanLink).

use clusterio::cmanlink::CmanLink;
use clusterio::ClientError;
use libcluster::fence::Input;
use libcluster::ipc::cman::{MembershipState, NodeState};
use libcluster::NodeId;

/// The inputs that describe cmand's current state: the installed view (if this node is a
/// member) and quorum.
pub async fn snapshot(cman: &mut CmanLink) -> Result<Vec<Input>, ClientError> {
    let Some(status) = cman.status().await else {
        return Err(ClientError::Closed);
    };
    if status.state != MembershipState::ClusterMember {
        return Ok(Vec::new());
    }
    let members = cman
        .nodes()
        .await
        .iter()
        .filter(|n| n.id != 0 && n.state == NodeState::Member)
        .map(|n| (NodeId(n.id), n.incarnation))
        .collect();
    Ok(vec![
        Input::ClusterView {
            generation: status.generation,
            members,
        },
        Input::Quorum {
            quorate: status.quorate,
        },
    ])
}
