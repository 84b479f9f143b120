//! The resource group manager's pure core: failover-domain placement, service states and
//! recovery policies.
