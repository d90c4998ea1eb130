//! A camera's timeline: recorded spans and event markers on a bar for one
//! hour or one day, rendered on the server as SVG (so it shows, and each
//! span plays when tapped, without JavaScript); `assets/timeline.js` makes
//! it scrubbable and plays from the exact moment chosen.
//!
//! The bar's geometry is in `data-` attributes (milliseconds since the
//! epoch) for the script; positions in the SVG are in thousandths of the
//! window. Inline styles are not allowed by the CSP, so nothing here is
//! positioned with `style=`.

use maud::{html, Markup};
use porchlight_store::Camera;
use serde::Deserialize;

use super::layout::{human_duration, q, time_el};
use crate::events::Event;

/// How much time the bar shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zoom {
    Hour,
    Day,
}

impl Zoom {
    fn parse(s: Option<&str>) -> Zoom {
        match s {
            Some("hour") => Zoom::Hour,
            _ => Zoom::Day,
        }
    }
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Zoom::Hour => "hour",
            Zoom::Day => "day",
        }
    }
    fn len_secs(self) -> i64 {
        match self {
            Zoom::Hour => 3600,
            Zoom::Day => 86400,
        }
    }
    /// Distance between ticks; windows end on a multiple of it.
    fn tick_secs(self) -> i64 {
        match self {
            Zoom::Hour => 600,
            Zoom::Day => 3 * 3600,
        }
    }
    fn align_secs(self) -> i64 {
        match self {
            Zoom::Hour => 600,
            Zoom::Day => 3600,
        }
    }
    fn word(self) -> &'static str {
        match self {
            Zoom::Hour => "hour",
            Zoom::Day => "day",
        }
    }
}

/// The query of a camera page and of its timeline fragment.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TimelineQ {
    pub zoom: Option<String>,
    /// The window's end: RFC 3339 or relative (`-1d`); default now.
    pub end: Option<String>,
}

/// The time window the bar shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub zoom: Zoom,
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    pub now: jiff::Timestamp,
}

fn ceil_to(t: jiff::Timestamp, step: i64) -> jiff::Timestamp {
    let s = t.as_second();
    let up = s.div_euclid(step) * step + if s.rem_euclid(step) == 0 { 0 } else { step };
    jiff::Timestamp::from_second(up).unwrap_or(t)
}

impl Window {
    pub(crate) fn new(q: &TimelineQ, now: jiff::Timestamp) -> Result<Window, String> {
        let zoom = Zoom::parse(q.zoom.as_deref());
        let end = match q.end.as_deref().filter(|s| !s.is_empty()) {
            None => now,
            Some(s) => porchlight_base::clock::parse_instant(s, now)?,
        };
        let latest = ceil_to(now, zoom.align_secs());
        let to = ceil_to(end, zoom.align_secs()).min(latest);
        let from = to - jiff::SignedDuration::from_secs(zoom.len_secs());
        Ok(Window {
            zoom,
            from,
            to,
            now,
        })
    }

    fn len_ms(&self) -> i64 {
        self.to.as_millisecond() - self.from.as_millisecond()
    }

    /// Position of `t` on the bar, 0–1000.
    fn x(&self, t: jiff::Timestamp) -> f64 {
        let f = (t.as_millisecond() - self.from.as_millisecond()) as f64 / self.len_ms() as f64;
        (f * 1000.0).clamp(0.0, 1000.0)
    }

    fn shifted(&self, by_windows: i64) -> jiff::Timestamp {
        self.to + jiff::SignedDuration::from_secs(by_windows * self.zoom.len_secs())
    }

    fn includes_now(&self) -> bool {
        self.to >= self.now
    }
}

fn ms(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

/// The link that shows window `end` at `zoom` for `cam`.
fn href(cam: &Camera, zoom: Zoom, end: Option<jiff::Timestamp>) -> String {
    let mut s = format!("/cameras/{}?zoom={}", cam.name, zoom.as_str());
    if let Some(e) = end {
        s.push_str("&end=");
        s.push_str(&q(&e.to_string()));
    }
    s
}

/// The playback URL of [from, to) of `cam`.
pub(crate) fn view_url(cam: &Camera, from: jiff::Timestamp, to: jiff::Timestamp) -> String {
    format!(
        "/api/v1/cameras/{}/view.mp4?from={}&to={}",
        cam.name,
        q(&from.to_string()),
        q(&to.to_string())
    )
}

/// The timeline section (also served alone, for the script to swap in).
pub(crate) fn render(
    cam: &Camera,
    w: &Window,
    spans: &[(jiff::Timestamp, jiff::Timestamp)],
    events: &[Event],
) -> Markup {
    let ticks = w.zoom.len_secs() / w.zoom.tick_secs();
    let recorded: i64 = spans
        .iter()
        .map(|(s, e)| e.as_second() - s.as_second())
        .sum();
    let later = (!w.includes_now()).then(|| w.shifted(1));
    html! {
        section id="timeline" class="timeline"
            data-camera=(cam.name)
            data-from=(ms(w.from)) data-to=(ms(w.to)) data-now=(ms(w.now))
            data-zoom=(w.zoom.as_str()) data-live=(w.includes_now())
        {
            div.tl-head {
                div.seg role="group" aria-label="Zoom" {
                    @for z in [Zoom::Hour, Zoom::Day] {
                        a.seg-item data-tl-nav href=(href(cam, z, (!w.includes_now()).then_some(w.to)))
                            aria-current=[(z == w.zoom).then_some("true")] {
                            (if z == Zoom::Hour { "Hour" } else { "Day" })
                        }
                    }
                }
                div.tl-nav {
                    a.btn-small data-tl-nav href=(href(cam, w.zoom, Some(w.shifted(-1)))) aria-label={ "Earlier " (w.zoom.word()) } { "‹" }
                    span.tl-range {
                        (time_el(w.from, "datetime")) " – "
                        (time_el(w.to, if w.zoom == Zoom::Day { "datetime" } else { "time" }))
                    }
                    @if let Some(l) = later {
                        a.btn-small data-tl-nav href=(href(cam, w.zoom, Some(l))) aria-label={ "Later " (w.zoom.word()) } { "›" }
                        a.btn-small data-tl-nav href=(href(cam, w.zoom, None)) { "Now" }
                    } @else {
                        span.btn-small.disabled aria-hidden="true" { "›" }
                    }
                }
            }
            div.tl-track tabindex="0" role="slider"
                aria-label={ "Recordings of " (cam.name) ": choose a moment to play" }
                aria-valuemin=(ms(w.from)) aria-valuemax=(ms(w.to)) aria-valuenow=(ms(w.from.max(w.now.min(w.to))))
            {
                svg.tl-svg viewBox="0 0 1000 100" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg" {
                    rect.tl-bg x="0" y="28" width="1000" height="52" {}
                    @if w.now < w.to {
                        @let x = w.x(w.now);
                        rect.tl-future x=(format!("{x:.2}")) y="0" width=(format!("{:.2}", 1000.0 - x)) height="100" {}
                    }
                    @for (s, e) in spans {
                        @let (x0, x1) = (w.x(*s), w.x(*e));
                        // Keep a short recording visible and tappable.
                        @let width = (x1 - x0).max(3.0);
                        a href=(view_url(cam, *s, *e)) {
                            rect.tl-span data-start=(ms(*s)) data-end=(ms(*e))
                                x=(format!("{:.2}", x0.min(1000.0 - width))) y="28" width=(format!("{width:.2}")) height="52" {
                                title { "Recorded " (s.strftime("%H:%M:%S UTC")) " – " (e.strftime("%H:%M:%S UTC")) }
                            }
                        }
                    }
                    @for i in 1..ticks {
                        @let x = 1000.0 * i as f64 / ticks as f64;
                        line.tl-tick x1=(format!("{x:.2}")) x2=(format!("{x:.2}")) y1="20" y2="88" vector-effect="non-scaling-stroke" {}
                    }
                    @for ev in events {
                        @let x = w.x(ev.start);
                        rect.tl-event data-start=(ms(ev.start)) data-kind=(ev.kind) x=(format!("{:.2}", (x - 1.5).max(0.0))) y="2" width="3" height="22" {
                            title { (ev.kind) " at " (ev.start.strftime("%H:%M:%S UTC")) }
                        }
                    }
                }
                div.tl-cursor hidden {}
                div.tl-playhead hidden {}
                output.tl-tip hidden {}
            }
            ol class=(format!("tl-labels n{ticks}")) aria-hidden="true" {
                @for i in 0..ticks {
                    li { (time_el(w.from + jiff::SignedDuration::from_secs(i * w.zoom.tick_secs()), "time")) }
                }
            }
            p.muted.tl-summary {
                @if spans.is_empty() {
                    "Nothing recorded in this " (w.zoom.word()) "."
                } @else {
                    (human_duration(recorded)) " recorded in this " (w.zoom.word())
                    " (" (spans.len()) (if spans.len() == 1 { " stretch" } else { " stretches" }) "). "
                    span.js-only { "Tap or drag on the bar to play from that moment." }
                }
                " "
                @if events.is_empty() {
                    span.tl-events { "No events." }
                } @else {
                    span.tl-events { (events.len()) " events (marks above the bar)." }
                }
            }
        }
    }
}
