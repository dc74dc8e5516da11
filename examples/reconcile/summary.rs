//! The metrics summary printed after the waterfalls: what each component's HyperFleet broker
//! metrics counted, read back from its own Prometheus registry.

use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

/// Totals of `hyperfleet_broker_*` in `registry`, by metric name (durations as count and sum).
fn totals(registry: &Registry) -> BTreeMap<String, f64> {
    let mut text = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
    let mut totals = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("hyperfleet_broker_")) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if name.ends_with("_bucket") {
            continue;
        }
        let value: f64 = value.parse().unwrap_or(0.0);
        *totals.entry(name.to_owned()).or_insert(0.0) += value;
    }
    totals
}

/// One line per component that published or consumed anything.
pub fn print(components: &[(&str, &Registry)]) {
    println!("metrics (hyperfleet_broker_*; each duration sample's exemplar opens its trace):");
    for (component, registry) in components {
        let t = totals(registry);
        let get = |name: &str| t.get(name).copied().unwrap_or(0.0);
        let published = get("hyperfleet_broker_messages_published_total");
        let consumed = get("hyperfleet_broker_messages_consumed_total");
        if published == 0.0 && consumed == 0.0 {
            continue;
        }
        let errors = get("hyperfleet_broker_errors_total");
        let mut line = format!(
            "  {component:<22} published {published:>2}  consumed {consumed:>2}  errors {errors:>2}"
        );
        let samples = get("hyperfleet_broker_message_duration_seconds_count");
        if samples > 0.0 {
            let mean = get("hyperfleet_broker_message_duration_seconds_sum") / samples * 1000.0;
            line.push_str(&format!("  handler {mean:.1} ms on average"));
        }
        println!("{line}");
    }
}
