//! A new `<rm>` configuration while rgmanagerd runs (`ccs_tool update`, spec §3.7): every
//! member switches at the same point of the group's order, because cmand delivers the
//! configuration through the same total order as the group's messages.
//!
//! Service indexes follow the configuration's order, so a new configuration may give every
//! service another index. What each node knows is carried over by name: records, intents,
//! what members run, fencing awaited, local VMs. A service no longer configured is
//! forgotten (a VM of it keeps running where it runs, unmanaged, as the original left
//! removed VMs running); a new one starts as the configuration says (disabled unless
//! autostart). Messages carry their sender's catalog fingerprint, so one sent under the old
//! configuration but delivered after the switch is dropped, not misread; a new round of
//! reports then rebuilds the coordinator's engine from what every member runs.

use super::super::catalog::{Catalog, ServiceIndex};
use super::super::state::{Intent, ServiceRecord};
use super::{Action, Coordinator, RG_EAGAIN};
use crate::Millis;
use std::collections::BTreeMap;
use tracing::{info, warn};

impl Coordinator {
    pub(super) fn reconfigure(&mut self, now: Millis, new: Catalog, out: &mut Vec<Action>) {
        let id = new.fingerprint();
        let old = std::mem::replace(&mut self.cat, new);
        let map: BTreeMap<ServiceIndex, ServiceIndex> = old
            .indexes()
            .filter_map(|s| self.cat.lookup(&old.service(s).name).map(|t| (s, t)))
            .collect();
        let remap = |list: &mut Vec<ServiceIndex>| {
            *list = list.iter().filter_map(|s| map.get(s).copied()).collect();
        };
        let mut records = vec![ServiceRecord::new(); self.cat.len()];
        let mut intents: Vec<Intent> = self
            .cat
            .indexes()
            .map(|s| Intent::initial(self.cat.service(s).autostart))
            .collect();
        for (&s, &t) in &map {
            records[t.0 as usize] = self.records[s.0 as usize].clone();
            intents[t.0 as usize] = self.intents[s.0 as usize];
        }
        for s in old.indexes().filter(|s| !map.contains_key(s)) {
            warn!(service = %old.service(s).name, "no longer configured; if it runs somewhere it is left running, unmanaged");
        }
        self.records = records;
        self.intents = intents;
        for p in self.pending.values_mut() {
            remap(&mut p.running);
        }
        self.migrations = std::mem::take(&mut self.migrations)
            .into_iter()
            .filter_map(|(s, m)| map.get(&s).map(|t| (*t, m)))
            .collect();
        for list in self
            .latest
            .values_mut()
            .chain(self.unresolved.values_mut())
            .chain(self.migrating.values_mut())
        {
            remap(list);
        }
        self.local.remap(&map, out);
        let vms = self
            .cat
            .indexes()
            .filter(|s| self.cat.service(*s).migratory)
            .collect();
        self.local.set_sweep(vms);
        self.table_parts = None;
        let same = id == self.catalog_id;
        self.catalog_id = id;
        info!(
            services = self.cat.len(),
            catalog = format!("{id:016x}"),
            "<rm> configuration changed; services carried over by name"
        );
        // Requests in flight name old indexes: the client may ask again.
        for id in std::mem::take(&mut self.requests) {
            out.push(Action::Reply {
                id,
                code: RG_EAGAIN,
            });
        }
        if self.coordinator == Some(self.cfg.me) {
            // The engine holds the old catalog: rebuild it from the carried table and the
            // members' reports under the new one (its records and operations carry over only
            // when no index moved).
            self.rebuild = true;
            if !same {
                self.engine = None;
                self.reliable.clear();
            }
        }
        // A new round of reports in the same group view, under the new catalog.
        self.restart_round(now);
    }
}
