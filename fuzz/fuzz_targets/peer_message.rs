//! The peer link's messages after their MAC (`lbd::peer`): what a peer holding the secret (or
//! a bug on the other director) can make this director decode. A `PeerMessage` or a `Hello`;
//! a `State` goes on through `parse_state` (JSON config, lineage, id bounds), the service's
//! whole-config validation and the replication rule against a fixed local lineage.
#![no_main]

use lbd::control::replication::{decide, Lineage, RevisionId};
use lbd::peer::pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = pb::Hello::decode(data);
    let Ok(m) = pb::PeerMessage::decode(data) else {
        return;
    };
    if let Some(pb::peer_message::Body::State(s)) = m.body {
        if let Ok(st) = lbd::peer::link::parse_state(s) {
            let _ = lbd::model::validate::config(&st.config, None);
            let local = Lineage::from_entries(vec![
                RevisionId::new(1, "lk01"),
                RevisionId::new(2, "lk02"),
            ]);
            let tip = RevisionId::new(2, "lk02");
            let _ = decide(&local, &tip, "lk01", &st.lineage, &st.tip, &st.node);
        }
    }
});
