//! Property tests over the whole configuration surface — flags, config file
//! and `configure` — with extreme floats: any value is taken within the one
//! rule for each option or refused with a sentence, and never panics; a rate
//! that is taken always makes an interval a clock can hold.

use std::time::Duration;

use odin_status::config::{interval_of, Config, Live, Sources, MAX_RATE, MIN_RATE};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Floats at and beyond every edge: subnormals, the smallest normal, huge,
/// infinite, NaN, signed zeros, and the bounds themselves.
fn extreme_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(1e-300),
        Just(1e-19),
        Just(MIN_RATE),
        Just(MIN_RATE * (1.0 - f64::EPSILON)),
        Just(MAX_RATE),
        Just(MAX_RATE * (1.0 + f64::EPSILON)),
        Just(f64::MAX),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        any::<f64>(),
        (-1e4f64..1e4),
    ]
}

/// A float as someone might write it: Rust's form, exponent form, or text.
fn written(value: f64) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(value.to_string()),
        Just(format!("{value:e}")),
        Just(format!(" {value} ")),
        "[-+0-9.eEinfaINFAN ]{0,12}",
    ]
}

fn check_rate(rate: f64) {
    assert!((MIN_RATE..=MAX_RATE).contains(&rate), "rate {rate} taken");
    let interval = interval_of(rate);
    assert!(interval >= Duration::from_millis(1) && interval <= Duration::from_secs(1000));
}

/// The outcome of loading, with the one rule checked when it is taken.
fn load(sources: &Sources) -> Option<Config> {
    match Config::load(sources) {
        Ok(config) => {
            check_rate(config.rate);
            Some(config)
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
            None
        }
    }
}

fn live() -> Live {
    let mut config = Config::load(&Sources::default()).unwrap();
    config.allow_configure = true;
    Live::new(&config, || vec!["lo".to_string()])
}

proptest! {
    #[test]
    fn rate_flags(text in extreme_float().prop_flat_map(written)) {
        load(&Sources { rate: Some(text), ..Sources::default() });
    }

    #[test]
    fn rate_and_limits_in_a_file(
        rate in extreme_float().prop_flat_map(written),
        limit in extreme_float().prop_flat_map(written),
    ) {
        let dir = std::env::temp_dir().join(format!("odin-status-cfgfuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("odin.cfg");
        let text = format!("[adapter.status]\nrate = {rate}\ndisk_percent_warn = {limit}\n");
        std::fs::write(&path, text).unwrap();
        load(&Sources { config_file: Some(path), ..Sources::default() });
    }

    #[test]
    fn limit_flags(name in "[a-z_]{0,30}", limit in extreme_float().prop_flat_map(written)) {
        load(&Sources { thresholds: vec![format!("{name}={limit}")], ..Sources::default() });
    }

    #[test]
    fn configure_rates_and_limits(rate in extreme_float(), limit in extreme_float(), as_int in any::<i64>()) {
        let live = live();
        for value in [json!(rate), json!(as_int), json!(rate.to_string())] {
            if let Ok(next) = live.configure(json!({"rate": value}).as_object().unwrap()) {
                check_rate(next.rate);
            }
            let _ = live.configure(
                json!({"thresholds": {"disk_percent_warn": value, "process_cpu_alarm": limit}})
                    .as_object()
                    .unwrap(),
            );
        }
    }

    #[test]
    fn any_configure_params(params in proptest::collection::vec(("[a-z_]{1,12}", any::<i64>()), 0..4)) {
        let live = live();
        let map: Map<String, Value> = params.into_iter().map(|(k, v)| (k, json!(v))).collect();
        if let Ok(next) = live.configure(&map) {
            check_rate(next.rate);
        }
    }

    #[test]
    fn list_flags(disks in ".{0,40}", processes in ".{0,40}", interfaces in ".{0,40}") {
        load(&Sources {
            disks: Some(disks),
            processes: Some(processes),
            interfaces: Some(interfaces),
            ..Sources::default()
        });
    }
}
