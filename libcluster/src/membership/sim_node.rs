//! Adapter that runs a [`Membership`] core under [`crate::sim`].
//!
//! The core keeps its own sans-IO API; this type implements [`sim::Process`] by calling
//! [`Membership::handle`] and turning `Action::Send` into `ctx.send` (with the sender's
//! incarnation, as the wire frame header carries it) and every other action into an event.

use super::api::{Action, ClientRequest, Input};
use super::msg::Msg;
use super::Membership;
use crate::sim::{self, Ctx};
use crate::{Millis, NodeId};

/// What travels between simulated nodes: the body plus the header's sender incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The sender's incarnation.
    pub incarnation: u64,
    /// The message.
    pub msg: Msg,
}

/// One simulated cmand: a core, plus groups it joins at every start (a local client).
#[derive(Debug)]
pub struct MembershipNode {
    core: Membership,
    join_on_start: Vec<String>,
    next_request: u64,
    out: Vec<Action>,
}

impl MembershipNode {
    /// Wraps a core; `join_on_start` are groups a local client joins when the node starts.
    pub fn new(core: Membership, join_on_start: Vec<String>) -> MembershipNode {
        MembershipNode {
            core,
            join_on_start,
            next_request: 0,
            out: Vec::new(),
        }
    }

    /// The core, for invariants.
    pub fn core(&self) -> &Membership {
        &self.core
    }

    fn run(&mut self, ctx: &mut Ctx<'_, Self>, input: Input) {
        self.core.handle(ctx.now, ctx.rng, input, &mut self.out);
        let incarnation = self.core.incarnation();
        for action in self.out.drain(..) {
            match action {
                Action::Send { to, msg } => ctx.send(to, Frame { incarnation, msg }),
                other => ctx.emit(other),
            }
        }
    }

    fn request(&mut self, ctx: &mut Ctx<'_, Self>, request: ClientRequest) {
        self.next_request += 1;
        let id = self.next_request;
        self.run(ctx, Input::Request { id, request });
    }
}

impl sim::Process for MembershipNode {
    type Msg = Frame;
    type Input = ClientRequest;
    /// Every action but `Send`: views, quorum, group events, replies, shutdown.
    type Event = Action;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.run(ctx, Input::Tick);
        for group in self.join_on_start.clone() {
            self.request(ctx, ClientRequest::GroupJoin { group });
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, frame: Frame) {
        let input = Input::Message {
            from,
            incarnation: frame.incarnation,
            msg: frame.msg,
        };
        self.run(ctx, input);
    }

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, request: ClientRequest) {
        self.request(ctx, request);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.run(ctx, Input::Tick);
    }

    fn next_deadline(&self) -> Option<Millis> {
        let d = self.core.next_deadline();
        (d != Millis(u64::MAX)).then_some(d)
    }
}
