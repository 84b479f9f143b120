//! The tracing transcript: every node step runs in a `node` span with the node id,
//! incarnation and simulated time. Alone in its binary: tracing caches per-callsite interest
//! process-wide, so a scoped subscriber racing other tests' threads could miss events.

use libcluster::sim::{Ctx, Process, Sim, SimConfig};
use libcluster::{Millis, NodeId};
use std::sync::{Arc, Mutex};

/// Logs one line when it starts, through the caller's subscriber.
struct Greeter;

impl Process for Greeter {
    type Msg = ();
    type Input = ();
    type Event = ();
    fn on_start(&mut self, _: &mut Ctx<'_, Self>) {
        tracing::info!("greeter started");
    }
    fn on_message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: ()) {}
    fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    fn on_timer(&mut self, _: &mut Ctx<'_, Self>) {}
    fn next_deadline(&self) -> Option<Millis> {
        None
    }
}

#[derive(Clone)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn node_steps_run_in_a_span_carrying_node_and_simulated_time() {
    let buffer = Buffer(Arc::new(Mutex::new(Vec::new())));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut config = SimConfig::new(14, 2);
        config.start_spread_ms = 50;
        let mut sim = Sim::new(config, |_, _| Greeter);
        sim.run_for(100).unwrap();
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let starts: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("greeter started"))
        .collect();
    assert_eq!(starts.len(), 2, "{text}");
    for line in starts {
        assert!(line.contains("node{id="), "{line}");
        assert!(line.contains(" inc=1 t=0.0"), "{line}");
    }
}
