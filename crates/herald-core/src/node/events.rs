//! The node's side of its backends: the facts they report, turned into what clients and the app see. A
//! backend holds a [`NodeEvents`], which keeps no node alive and does nothing once the node is gone.

use super::Node;
use crate::backend_events::{BackendEvents, ChannelTransition, Inbound, MemberLeft, MemberReturned};
use crate::webhook::WebhookEvent;
use crate::BoxFuture;
use herald_protocol::channel::is_internal;
use std::sync::Weak;
use std::time::Instant;

pub(super) struct NodeEvents {
    node: Weak<Node>,
}

impl NodeEvents {
    pub(super) fn new(node: Weak<Node>) -> Self {
        NodeEvents { node }
    }
}

impl BackendEvents for NodeEvents {
    fn delivered(&self, app_id: &str, channel: &str, inbound: Inbound<'_>, received: Instant) {
        if let Some(node) = self.node.upgrade() {
            node.deliver(app_id, channel, inbound, received);
        }
    }

    fn cache_event(&self, app_id: &str, channel: &str, payload: &[u8]) {
        if let Some(node) = self.node.upgrade() {
            node.keep_cache_event(app_id, channel, payload);
        }
    }

    fn members_left(&self, left: Vec<MemberLeft>) -> BoxFuture<'static, ()> {
        let node = self.node.upgrade();
        Box::pin(async move {
            let Some(node) = node else { return };
            for gone in left {
                if let Some(app) = node.app_by_id(&gone.app_id) {
                    node.member_removed(&app, &gone.channel, &gone.user_id, gone.version, gone.join_announced)
                        .await;
                }
            }
        })
    }

    fn members_returned(&self, returned: Vec<MemberReturned>) -> BoxFuture<'static, ()> {
        let node = self.node.upgrade();
        Box::pin(async move {
            let Some(node) = node else { return };
            for back in returned {
                if let Some(app) = node.app_by_id(&back.app_id) {
                    let except = Some(back.socket_id.clone());
                    node.member_added(&app, &back.channel, &back.member, except, back.version)
                        .await;
                }
            }
        })
    }

    fn channels_changed(&self, transitions: Vec<ChannelTransition>) {
        let Some(node) = self.node.upgrade() else { return };
        for t in transitions {
            if is_internal(&t.channel) {
                continue;
            }
            let Some(app) = node.app_by_id(&t.app_id) else {
                continue;
            };
            let event = if t.occupied {
                WebhookEvent::channel_occupied(&t.channel)
            } else {
                WebhookEvent::channel_vacated(&t.channel)
            };
            node.emit_webhook(&app, event);
        }
    }
}
