//! Reading metrics back: an OpenMetrics exposition as Prometheus scrapes it, and what the
//! OpenTelemetry SDK collected.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value [# {exemplar} value timestamp]`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub exemplar: Option<BTreeMap<String, String>>,
}

/// A parsed exposition.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        assert!(text.ends_with("# EOF\n"), "not OpenMetrics text:\n{text}");
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(parse_sample)
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Every exemplar of the samples whose name starts with `prefix`.
    pub fn exemplars(&self, prefix: &str) -> Vec<BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .filter_map(|s| s.exemplar.clone())
            .collect()
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, exemplar) = match line.split_once(" # ") {
        Some((series, exemplar)) => (series, Some(exemplar)),
        None => (line, None),
    };
    let (name_labels, value) = series.rsplit_once(' ').expect("a value");
    let (name, labels) = match name_labels.split_once('{') {
        Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
        None => (name_labels, BTreeMap::new()),
    };
    let exemplar = exemplar.map(|e| {
        let labels = e
            .strip_prefix('{')
            .and_then(|e| e.split_once('}'))
            .expect("exemplar labels")
            .0;
        parse_labels(labels)
    });
    Sample {
        name: name.to_owned(),
        labels,
        value: value.parse().expect("a number"),
        exemplar,
    }
}

fn parse_labels(labels: &str) -> BTreeMap<String, String> {
    labels
        .split("\",")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("name=value");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

/// Fetches `http://{address}/metrics` with `accept` (none: a scraper that knows only the
/// classic text format): the body and its content type.
async fn fetch(address: std::net::SocketAddr, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("http://{address}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (response.text().await.unwrap(), content_type)
}

/// `/metrics` as a scraper that knows only the classic text format gets it.
pub async fn scrape_classic(address: std::net::SocketAddr) -> (String, String) {
    fetch(address, None).await
}

/// `/metrics` the way Prometheus asks for it: OpenMetrics.
pub async fn scrape(address: std::net::SocketAddr) -> Exposition {
    let (text, content_type) =
        fetch(address, Some("application/openmetrics-text;version=1.0.0")).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    Exposition::parse(&text)
}
