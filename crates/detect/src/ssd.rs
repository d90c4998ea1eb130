//! The SSD post-processing the model needs and does not contain: the
//! MediaPipe anchor set, box decoding, score sigmoid, IoU and per-class
//! non-maximum suppression. Pure arithmetic, tested on synthetic inputs.

/// Side of the square input the model sees.
pub const INPUT_SIDE: usize = 300;
/// Number of anchors (and so of rows in each model output).
pub const NUM_ANCHORS: usize = 1917;

/// One SSD anchor, in coordinates normalised to the 300x300 input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

/// An axis-aligned box: `x0,y0` top-left, `x1,y1` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxF {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BoxF {
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &BoxF, b: &BoxF) -> f32 {
    let iw = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let ih = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = iw * ih;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Linear scale of layer `index` of `count` between `min` and `max`.
fn layer_scale(min: f32, max: f32, index: usize, count: usize) -> f32 {
    if count == 1 {
        (min + max) / 2.0
    } else {
        min + (max - min) * index as f32 / (count as f32 - 1.0)
    }
}

/// The anchors of MediaPipe's `SsdAnchorsCalculator` with the options of
/// the objectron graph `object_detection_oid_v4_cpu.pbtxt`: 6 layers,
/// strides 16..512, scales 0.2..0.95, aspect ratios 1, 2, 0.5, 3, 1/3 plus an
/// interpolated-scale ratio-1 box, offset 0.5, and the lowest layer reduced
/// to ratios 1, 2, 0.5 with scales 0.1, s, s. Order: layer, then row, then
/// column, then box — the order of the model's output rows.
pub fn anchors() -> Vec<Anchor> {
    const STRIDES: [usize; 6] = [16, 32, 64, 128, 256, 512];
    const RATIOS: [f32; 5] = [1.0, 2.0, 0.5, 3.0, 0.3333];
    const MIN_SCALE: f32 = 0.2;
    const MAX_SCALE: f32 = 0.95;
    let n = STRIDES.len();
    let mut out = Vec::with_capacity(NUM_ANCHORS);
    for (layer, &stride) in STRIDES.iter().enumerate() {
        let scale = layer_scale(MIN_SCALE, MAX_SCALE, layer, n);
        let mut boxes: Vec<(f32, f32)> = Vec::new(); // (ratio, scale)
        if layer == 0 {
            boxes.extend([(1.0, 0.1), (2.0, scale), (0.5, scale)]);
        } else {
            boxes.extend(RATIOS.iter().map(|&r| (r, scale)));
            let next = if layer == n - 1 {
                1.0
            } else {
                layer_scale(MIN_SCALE, MAX_SCALE, layer + 1, n)
            };
            boxes.push((1.0, (scale * next).sqrt()));
        }
        let fm = INPUT_SIDE.div_ceil(stride);
        for y in 0..fm {
            for x in 0..fm {
                for &(ratio, s) in &boxes {
                    let r = ratio.sqrt();
                    out.push(Anchor {
                        cx: (x as f32 + 0.5) / fm as f32,
                        cy: (y as f32 + 0.5) / fm as f32,
                        w: s * r,
                        h: s / r,
                    });
                }
            }
        }
    }
    out
}

/// Decodes one box encoding `[ty, tx, th, tw]` against its anchor with the
/// scales 10, 10, 5, 5, into normalised coordinates.
pub fn decode_box(enc: [f32; 4], a: &Anchor) -> BoxF {
    let cy = enc[0] / 10.0 * a.h + a.cy;
    let cx = enc[1] / 10.0 * a.w + a.cx;
    let h = (enc[2] / 5.0).exp() * a.h;
    let w = (enc[3] / 5.0).exp() * a.w;
    BoxF {
        x0: cx - w / 2.0,
        y0: cy - h / 2.0,
        x1: cx + w / 2.0,
        y1: cy + h / 2.0,
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A decoded candidate: class index into the label map, score, normalised box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub class: usize,
    pub score: f32,
    pub bbox: BoxF,
}

/// Turns raw outputs into candidates: for each anchor the best class other
/// than 0 (background), after a sigmoid, kept when its score reaches
/// `threshold` (MediaPipe's `TensorsToDetections` behaviour).
/// `boxes` is `anchors.len() * 4`, `logits` is `anchors.len() * classes`.
pub fn decode(
    boxes: &[f32],
    logits: &[f32],
    classes: usize,
    anchors: &[Anchor],
    threshold: f32,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (i, a) in anchors.iter().enumerate() {
        let row = &logits[i * classes..(i + 1) * classes];
        let Some((class, &logit)) = row
            .iter()
            .enumerate()
            .skip(1)
            .max_by(|x, y| x.1.total_cmp(y.1))
        else {
            continue;
        };
        let score = sigmoid(logit);
        if score < threshold {
            continue;
        }
        let e = &boxes[i * 4..i * 4 + 4];
        out.push(Candidate {
            class,
            score,
            bbox: decode_box([e[0], e[1], e[2], e[3]], a),
        });
    }
    out
}

/// Greedy non-maximum suppression per class: highest score first, drops any
/// box of the same class whose IoU with a kept one exceeds `iou_threshold`.
/// The result is sorted by descending score.
pub fn nms(mut cands: Vec<Candidate>, iou_threshold: f32) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept
            .iter()
            .all(|k| k.class != c.class || iou(&k.bbox, &c.bbox) <= iou_threshold)
        {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: f32, y0: f32, x1: f32, y1: f32) -> BoxF {
        BoxF { x0, y0, x1, y1 }
    }

    #[test]
    fn anchor_count_is_1917_with_layer_sizes() {
        let a = anchors();
        assert_eq!(a.len(), 1917);
        // 19*19*3, then 10*10*6, 5*5*6, 3*3*6, 2*2*6, 1*1*6.
        assert_eq!(1083 + 600 + 150 + 54 + 24 + 6, 1917);
    }

    #[test]
    fn anchors_spot_check() {
        let a = anchors();
        let close = |x: f32, y: f32| (x - y).abs() < 1e-4;
        // First anchor: layer 0, cell (0,0), ratio 1 at scale 0.1.
        assert!(close(a[0].cx, 0.5 / 19.0) && close(a[0].cy, 0.5 / 19.0));
        assert!(close(a[0].w, 0.1) && close(a[0].h, 0.1));
        // Second: ratio 2 at scale 0.2: w = 0.2*sqrt2, h = 0.2/sqrt2.
        assert!(close(a[1].w, 0.2 * 2f32.sqrt()) && close(a[1].h, 0.2 / 2f32.sqrt()));
        // Last anchor of layer 0: cell (18,18).
        assert!(close(a[1082].cx, 18.5 / 19.0) && close(a[1082].cy, 18.5 / 19.0));
        // First of layer 1: 10x10 map, scale 0.2 + 0.75/5 = 0.35, ratio 1.
        assert!(close(a[1083].cx, 0.05) && close(a[1083].w, 0.35));
        // Its interpolated box: sqrt(0.35 * 0.5).
        assert!(close(a[1088].w, (0.35f32 * 0.5).sqrt()) && close(a[1088].h, a[1088].w));
        // Last layer: one cell at the centre, scale 0.95; last box interpolates to 1.0.
        assert!(close(a[1911].cx, 0.5) && close(a[1911].cy, 0.5) && close(a[1911].w, 0.95));
        assert!(close(a[1916].w, 0.95f32.sqrt()));
        // Ratio 3 of the last layer: wide.
        assert!(close(a[1914].w, 0.95 * 3f32.sqrt()) && close(a[1914].h, 0.95 / 3f32.sqrt()));
    }

    #[test]
    fn zero_encoding_decodes_to_the_anchor() {
        let a = Anchor {
            cx: 0.5,
            cy: 0.25,
            w: 0.2,
            h: 0.4,
        };
        let d = decode_box([0.0; 4], &a);
        assert!((d.x0 - 0.4).abs() < 1e-6 && (d.x1 - 0.6).abs() < 1e-6);
        assert!((d.y0 - 0.05).abs() < 1e-6 && (d.y1 - 0.45).abs() < 1e-6);
        // ty=10 moves the centre down by one anchor height; th=5*ln2 doubles h.
        let d = decode_box([10.0, 0.0, 5.0 * 2f32.ln(), 0.0], &a);
        assert!((((d.y0 + d.y1) / 2.0) - 0.65).abs() < 1e-5);
        assert!(((d.y1 - d.y0) - 0.8).abs() < 1e-5);
    }

    #[test]
    fn iou_known_values() {
        assert_eq!(iou(&b(0., 0., 2., 2.), &b(0., 0., 2., 2.)), 1.0);
        assert_eq!(iou(&b(0., 0., 1., 1.), &b(2., 2., 3., 3.)), 0.0);
        // Half overlap: inter 2, union 6.
        assert!((iou(&b(0., 0., 2., 2.), &b(1., 0., 3., 2.)) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&b(0., 0., 0., 0.), &b(0., 0., 0., 0.)), 0.0);
    }

    #[test]
    fn decode_skips_background_and_low_scores() {
        let anchors = vec![
            Anchor {
                cx: 0.5,
                cy: 0.5,
                w: 0.2,
                h: 0.2
            };
            3
        ];
        let boxes = vec![0.0; 12];
        // classes: 0 background, 1, 2.
        let logits = vec![
            9.0, -9.0, -9.0, // background only: skipped
            0.0, 3.0, -1.0, // class 1, sigmoid(3) = 0.95
            0.0, -1.0, -0.5, // best is class 2 at 0.38 < 0.5
        ];
        let c = decode(&boxes, &logits, 3, &anchors, 0.5);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class, 1);
        assert!((c[0].score - 0.9526).abs() < 1e-3);
    }

    #[test]
    fn nms_is_per_class_and_keeps_best() {
        let c = |class, score, bbox| Candidate { class, score, bbox };
        let out = nms(
            vec![
                c(1, 0.6, b(0., 0., 10., 10.)),
                c(1, 0.9, b(1., 1., 11., 11.)), // IoU with first ~0.68: first dropped
                c(2, 0.7, b(0., 0., 10., 10.)), // other class: kept
                c(1, 0.8, b(20., 20., 30., 30.)), // far away: kept
            ],
            0.5,
        );
        let got: Vec<(usize, f32)> = out.iter().map(|c| (c.class, c.score)).collect();
        assert_eq!(got, vec![(1, 0.9), (1, 0.8), (2, 0.7)]);
    }
}
