//! LATENCY's samples: for each event, the last 160 spikes at or above
//! `latency-monitor-threshold` (one per second, the highest), as Redis'
//! latency.c keeps them. A plain structure; the diagnostics actor owns it.

use std::collections::{BTreeMap, VecDeque};

/// Redis' `LATENCY_TS_LEN`.
const SAMPLES: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Unix seconds.
    pub time: u64,
    pub millis: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Series {
    pub samples: VecDeque<Sample>,
    pub max: u64,
}

#[derive(Default)]
pub(crate) struct LatencyMonitor {
    events: BTreeMap<String, Series>,
}

impl LatencyMonitor {
    /// Records a spike of `event` (the caller checked the threshold).
    pub(crate) fn add(&mut self, event: &str, time: u64, millis: u64) {
        let series = self.events.entry(event.to_string()).or_default();
        series.max = series.max.max(millis);
        match series.samples.back_mut() {
            Some(last) if last.time == time => last.millis = last.millis.max(millis),
            _ => {
                series.samples.push_back(Sample { time, millis });
                if series.samples.len() > SAMPLES {
                    series.samples.pop_front();
                }
            }
        }
    }

    pub(crate) fn events(&self) -> impl Iterator<Item = (&String, &Series)> {
        self.events.iter()
    }

    pub(crate) fn series(&self, event: &str) -> Option<&Series> {
        self.events.get(event)
    }

    /// Forgets the named events (all if none named); how many there were.
    pub(crate) fn reset(&mut self, events: &[String]) -> usize {
        if events.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        events.iter().filter(|e| self.events.remove(e.as_str()).is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_the_highest_and_160_at_most() {
        let mut m = LatencyMonitor::default();
        m.add("command", 10, 5);
        m.add("command", 10, 9);
        m.add("command", 10, 2);
        m.add("command", 11, 3);
        let s = m.series("command").unwrap();
        assert_eq!(s.samples, [Sample { time: 10, millis: 9 }, Sample { time: 11, millis: 3 }]);
        assert_eq!(s.max, 9);
        for t in 0..300 {
            m.add("fast-command", 100 + t, 1);
        }
        assert_eq!(m.series("fast-command").unwrap().samples.len(), SAMPLES);
        assert_eq!(m.series("fast-command").unwrap().samples[0].time, 240);
        assert_eq!(m.reset(&["command".into(), "nope".into()]), 1);
        assert_eq!(m.reset(&[]), 1);
        assert!(m.events().next().is_none());
    }
}
