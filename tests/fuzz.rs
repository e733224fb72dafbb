//! Property tests over the control-message decoder and the path lookup: any
//! input gets exactly one well-formed reply and never a panic. (cargo-fuzz
//! needs a nightly toolchain, which this project's machines do not have;
//! proptest runs on stable, bounded, in every CI run.)

use std::sync::Arc;

use odin_status::command::Context;
use odin_status::config::{Config, Live, Sources};
use odin_status::server::answer;
use odin_status::settings::Settings;
use odin_status::snapshot::{CpuTicks, DiskUsage, NetStats, ProcessStats, Snapshot};
use odin_status::transport::Incoming;
use odin_status::tree::Node;
use proptest::prelude::*;
use serde_json::{json, Value};

fn context() -> Context {
    let snapshot = Snapshot {
        disks: vec![(
            "_".into(),
            DiskUsage {
                total: 100,
                used: 40,
                free: 50,
                percent: 44.4,
                time_to_full: Some(3.5),
                ..DiskUsage::default()
            },
        )],
        interfaces: vec![("lo".into(), NetStats::default())],
        processes: vec![(
            "fp".into(),
            vec![ProcessStats {
                pid: 42,
                cpu_percent: 1.0,
                cpu_affinity: vec![0, 1],
                memory_percent: 0.5,
                memory_rss: 1,
                memory_vms: 2,
                memory_shared: 3,
                start_time: 4,
                num_threads: 5,
                num_fds: Some(6),
                cpu_ticks: CpuTicks::default(),
            }],
        )],
        ..Snapshot::default()
    };
    let config = Config::load(&Sources::default()).expect("defaults load");
    Context {
        tree: Arc::new(snapshot.to_tree().into()),
        settings: Arc::new(Settings::new(&config, Live::new(&config, Vec::new))),
    }
}

/// The reply to `frames` as a DEALER would send them, checked for shape.
fn reply_to(context: &Context, body: Vec<Vec<u8>>) -> Value {
    let mut frames = vec![b"client".to_vec()];
    frames.extend(body);
    let reply = answer(&Incoming::split(frames), context);
    let value: Value = serde_json::from_slice(&reply).expect("every reply is JSON");
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["msg_type", "msg_val", "id", "timestamp", "params"]);
    let msg_type = value["msg_type"].as_str().unwrap();
    assert!(msg_type == "ack" || msg_type == "nack");
    if msg_type == "nack" {
        let error = value["params"]["error"].as_str().expect("a nack says why");
        assert!(!error.is_empty());
        assert_eq!(value["params"].as_object().unwrap().len(), 1);
    }
    value
}

/// JSON values of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Request-like objects: the real keys (and others) with values of any type.
fn request_like() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("msg_type".to_string()),
        Just("msg_val".to_string()),
        Just("id".to_string()),
        Just("timestamp".to_string()),
        Just("params".to_string()),
        "[a-z]{1,8}",
    ];
    let value = prop_oneof![
        Just(json!("cmd")),
        Just(json!("get")),
        Just(json!("status")),
        Just(json!({"path": "disk/_"})),
        Just(json!({"path": "process/fp/42/cpu_affinity/1", "metadata": true})),
        any::<u32>().prop_map(Value::from),
        json_value(),
    ];
    prop::collection::btree_map(key, value, 0..7)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    // PROPTEST_CASES=1000000 for a long run; CI runs 10,000 cases a property.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_bytes_get_one_reply(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let reply = reply_to(&context(), vec![body]);
        prop_assert_eq!(reply["msg_type"].as_str(), Some("nack"));
    }

    #[test]
    fn any_frames_get_one_reply(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..5)) {
        reply_to(&context(), frames);
    }

    #[test]
    fn request_like_objects_get_one_reply(request in request_like()) {
        let text = serde_json::to_vec(&request).unwrap();
        let reply = reply_to(&context(), vec![text.clone()]);
        if reply["msg_type"] == "ack" {
            // Only a well-formed command is acknowledged, and its id is echoed.
            prop_assert_eq!(&request["msg_type"], &json!("cmd"));
            prop_assert_eq!(&reply["msg_val"], &request["msg_val"]);
            prop_assert_eq!(reply["id"].as_u64(), Some(request.get("id").and_then(Value::as_u64).unwrap_or(0)));
        }
        // A truncated request is never acknowledged.
        let cut = text.len() / 2;
        let truncated = reply_to(&context(), vec![text[..cut].to_vec()]);
        prop_assert_eq!(truncated["msg_type"].as_str(), Some("nack"));
    }

    #[test]
    fn any_path_is_found_or_invalid(path in prop_oneof![
        "[a-z_0-9/]{0,40}",
        "(disk|network|process)(/[a-z_0-9]{0,6}){0,5}/?",
        ".{0,40}",
    ]) {
        let ctx = context();
        match ctx.tree.get(&path) {
            Ok(selection) => {
                let _ = serde_json::to_value(selection.view(true)).unwrap();
            }
            Err(e) => prop_assert_eq!(e.to_string(), format!("Invalid path: {path}")),
        }
        let reply = reply_to(&ctx, vec![serde_json::to_vec(&json!({
            "msg_type": "cmd", "msg_val": "get", "id": 5, "params": {"path": path}
        })).unwrap()]);
        prop_assert_eq!(reply["id"].as_u64(), Some(5));
    }

    #[test]
    fn plain_json_trees_keep_get_rules(tree in json_value(), path in "[a-z_0-9/]{0,20}") {
        // Clients (watch, replay) rebuild trees from JSON: any JSON at all.
        let node = Node::from_json(&tree);
        if let Ok(selection) = node.get(&path) {
            let _ = selection.bare();
        }
    }
}
