//! Photo uploads: decode, normalise, re-encode — so no metadata survives.
//!
//! A photo posted to the neighborhood may carry the very thing the server
//! must never hold: a precise location (EXIF GPS), a camera serial, a
//! timestamp, an embedded thumbnail of something else. Stripping tags from
//! the original file is fragile (there are many places to hide data: EXIF,
//! XMP, IPTC, PNG text chunks, trailing bytes), so this module never keeps
//! any byte of the upload: it decodes the pixels, applies the EXIF
//! orientation (so the picture still looks upright once the tag is gone),
//! bounds the size to [`MAX_EDGE`] pixels, flattens transparency onto white
//! and encodes a **fresh baseline JPEG** whose only segments are the ones
//! the encoder writes itself (JFIF header, tables, pixels).
//!
//! Invariants:
//! * the output is a JPEG with no APP1 (EXIF/XMP), APP13 (IPTC) or COM
//!   segment, whatever the input carried;
//! * input is limited before decoding: at most [`MAX_UPLOAD_BYTES`] bytes,
//!   at most [`MAX_PIXELS`] pixels and [`MAX_DIMENSION`] per side as read
//!   from the header, and a bounded decoder allocation — a
//!   decompression bomb is refused, never decoded;
//! * only JPEG, PNG and WebP are accepted; everything else is an error
//!   naming the problem. No panics on any input.

use std::io::Cursor;

use image::{
    codecs::jpeg::JpegEncoder, imageops::FilterType, DynamicImage, ImageDecoder, ImageError,
    ImageFormat, ImageReader, Limits, RgbImage,
};

/// Largest accepted upload, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
/// Largest accepted width or height of the decoded image.
pub const MAX_DIMENSION: u32 = 12_000;
/// Largest accepted number of pixels (width × height).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Longest edge of the re-encoded photo.
pub const MAX_EDGE: u32 = 2048;
/// JPEG quality of the re-encoded photo.
pub const JPEG_QUALITY: u8 = 85;
/// Decoder memory budget.
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// A re-encoded photo: a fresh JPEG with no metadata.
#[derive(Debug, Clone)]
pub struct Photo {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("the upload is empty")]
    Empty,
    #[error("the upload is {0} bytes; photos may be at most 20 MiB")]
    TooManyBytes(usize),
    #[error("the upload is not an image: expected a JPEG, PNG or WebP file")]
    NotAnImage,
    #[error("{0} images are not accepted: upload a JPEG, PNG or WebP file")]
    Unsupported(String),
    #[error(
        "the image is {width}×{height} pixels, which is too large (at most 12000 pixels a side \
         and 50 megapixels)"
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image is too large to decode safely")]
    LimitExceeded,
    #[error("the image file is damaged or truncated: {0}")]
    Corrupt(String),
    #[error("could not encode the photo: {0}")]
    Encode(String),
}

fn classify(e: ImageError) -> PhotoError {
    match e {
        ImageError::Limits(_) => PhotoError::LimitExceeded,
        ImageError::Unsupported(u) => PhotoError::Unsupported(u.format_hint().to_string()),
        ImageError::Decoding(d) => PhotoError::Corrupt(d.to_string()),
        ImageError::IoError(io) => PhotoError::Corrupt(io.to_string()),
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// Decodes `bytes` (JPEG, PNG or WebP), applies its EXIF orientation,
/// bounds it to [`MAX_EDGE`] pixels on the longest side and returns a fresh
/// JPEG that carries no metadata at all.
pub fn reencode(bytes: &[u8]) -> Result<Photo, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(PhotoError::TooManyBytes(bytes.len()));
    }
    let format = image::guess_format(bytes).map_err(|_| PhotoError::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(PhotoError::Unsupported(format!("{format:?}")));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        // The dimension limits fire here, from the header alone.
        ImageError::Limits(_) => header_dimensions(bytes, format)
            .map(|(width, height)| PhotoError::TooLarge { width, height })
            .unwrap_or(PhotoError::LimitExceeded),
        other => classify(other),
    })?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PhotoError::Corrupt("the image has no pixels".into()));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(PhotoError::TooLarge { width, height });
    }
    // A broken or absent orientation tag is not a reason to refuse a photo.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(classify)?;
    img.apply_orientation(orientation);
    if img.width() > MAX_EDGE || img.height() > MAX_EDGE {
        img = img.resize(MAX_EDGE, MAX_EDGE, FilterType::Lanczos3);
    }
    let rgb = flatten_on_white(&img);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| PhotoError::Encode(e.to_string()))?;
    Ok(Photo {
        jpeg,
        width: rgb.width(),
        height: rgb.height(),
    })
}

/// Width and height as declared by the file header (for error messages).
fn header_dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    reader.into_dimensions().ok()
}

/// Drops alpha by compositing onto white (JPEG has no transparency; a plain
/// drop would show whatever colour the transparent pixels happened to hold).
fn flatten_on_white(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            o[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// The JPEG marker segments of `jpeg` up to the start of scan, as
/// `(marker, payload)`; used by tests and by callers that want to verify
/// an output (e.g. a stored photo) carries no metadata segment.
pub fn jpeg_segments(jpeg: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    if jpeg.len() < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
        return out;
    }
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            break;
        }
        let marker = jpeg[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if len < 2 || i + 2 + len > jpeg.len() {
            break;
        }
        out.push((marker, &jpeg[i + 4..i + 2 + len]));
        if marker == 0xDA {
            break; // start of scan: entropy-coded data follows
        }
        i += 2 + len;
    }
    out
}

/// True when a JPEG has no segment that can carry metadata: APP1 (EXIF,
/// XMP), APP2–APP15 (ICC, IPTC, vendor data) or COM.
pub fn jpeg_has_no_metadata(jpeg: &[u8]) -> bool {
    let segs = jpeg_segments(jpeg);
    !segs.is_empty()
        && segs
            .iter()
            .all(|(m, _)| !(0xE1..=0xEF).contains(m) && *m != 0xFE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb, Rgba, RgbaImage};

    /// A plain JPEG of `w`×`h`: left half red, right half blue.
    fn two_colour_jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 20, 220])
            }
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn be16(v: u16) -> [u8; 2] {
        v.to_be_bytes()
    }

    /// An EXIF APP1 segment written by hand: big-endian TIFF with IFD0
    /// holding Orientation (if given), Make, and a GPS IFD pointer; the GPS
    /// IFD holds latitude 47°36'22" N, longitude 122°19'55" W.
    fn exif_app1(orientation: Option<u16>) -> Vec<u8> {
        let mut t = Vec::new(); // TIFF block, offsets relative to its start
        t.extend_from_slice(b"MM\x00\x2A\x00\x00\x00\x08");
        let mut entries: Vec<(u16, u16, u32, [u8; 4])> = Vec::new();
        if let Some(o) = orientation {
            let mut v = [0u8; 4];
            v[..2].copy_from_slice(&be16(o));
            entries.push((0x0112, 3, 1, v));
        }
        let n0 = entries.len() as u32 + 2; // + Make + GPS pointer
        let ifd0_len = 2 + 12 * n0 + 4;
        let make_off = 8 + ifd0_len;
        let make = b"SpyCam\0\0";
        let gps_off = make_off + make.len() as u32;
        entries.push((0x010F, 2, make.len() as u32, make_off.to_be_bytes()));
        entries.push((0x8825, 4, 1, gps_off.to_be_bytes()));
        entries.sort_by_key(|e| e.0);
        t.extend_from_slice(&be16(n0 as u16));
        for (tag, typ, count, val) in &entries {
            t.extend_from_slice(&be16(*tag));
            t.extend_from_slice(&be16(*typ));
            t.extend_from_slice(&count.to_be_bytes());
            t.extend_from_slice(val);
        }
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(make);
        // GPS IFD: LatRef, Lat, LngRef, Lng
        let gps_n = 4u32;
        let gps_len = 2 + 12 * gps_n + 4;
        let lat_off = gps_off + gps_len;
        let lng_off = lat_off + 24;
        t.extend_from_slice(&be16(gps_n as u16));
        let gps = [
            (0x0001u16, 2u16, 2u32, *b"N\0\0\0"),
            (0x0002, 5, 3, lat_off.to_be_bytes()),
            (0x0003, 2, 2, *b"W\0\0\0"),
            (0x0004, 5, 3, lng_off.to_be_bytes()),
        ];
        for (tag, typ, count, val) in gps {
            t.extend_from_slice(&be16(tag));
            t.extend_from_slice(&be16(typ));
            t.extend_from_slice(&count.to_be_bytes());
            t.extend_from_slice(&val);
        }
        t.extend_from_slice(&[0, 0, 0, 0]);
        for (num, den) in [(47u32, 1u32), (36, 1), (22, 1), (122, 1), (19, 1), (55, 1)] {
            t.extend_from_slice(&num.to_be_bytes());
            t.extend_from_slice(&den.to_be_bytes());
        }
        let mut seg = vec![0xFF, 0xE1];
        seg.extend_from_slice(&be16((2 + 6 + t.len()) as u16));
        seg.extend_from_slice(b"Exif\0\0");
        seg.extend_from_slice(&t);
        seg
    }

    /// Inserts extra segments right after SOI.
    fn with_segments(jpeg: &[u8], segs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        for s in segs {
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn com_segment(text: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, 0xFE];
        s.extend_from_slice(&be16((2 + text.len()) as u16));
        s.extend_from_slice(text);
        s
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn decode(jpeg: &[u8]) -> RgbImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8()
    }

    fn near(p: &Rgb<u8>, want: [u8; 3]) -> bool {
        p.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) < 40)
    }

    #[test]
    fn gps_exif_is_stripped_and_pixels_survive() {
        let plain = two_colour_jpeg(64, 32);
        let input = with_segments(
            &plain,
            &[exif_app1(None), com_segment(b"shot at 12 Elm St")],
        );
        // The fixture really carries what we claim to strip.
        assert!(contains(&input, b"Exif\0\0") && contains(&input, b"SpyCam"));
        assert!(jpeg_segments(&input).iter().any(|(m, _)| *m == 0xE1));
        assert!(!jpeg_has_no_metadata(&input));
        // image itself can see the EXIF block in the input.
        let mut dec = ImageReader::with_format(Cursor::new(&input[..]), ImageFormat::Jpeg)
            .into_decoder()
            .unwrap();
        assert!(dec
            .exif_metadata()
            .unwrap()
            .is_some_and(|e| contains(&e, b"SpyCam")));

        let photo = reencode(&input).unwrap();
        assert_eq!((photo.width, photo.height), (64, 32));
        assert!(jpeg_has_no_metadata(&photo.jpeg));
        assert!(!contains(&photo.jpeg, b"Exif"));
        assert!(!contains(&photo.jpeg, b"SpyCam"));
        assert!(!contains(&photo.jpeg, b"Elm St"));
        assert!(!jpeg_segments(&photo.jpeg)
            .iter()
            .any(|(m, _)| *m == 0xE1 || *m == 0xFE));
        let mut dec = ImageReader::with_format(Cursor::new(&photo.jpeg[..]), ImageFormat::Jpeg)
            .into_decoder()
            .unwrap();
        assert!(dec.exif_metadata().unwrap().is_none());
        let out = decode(&photo.jpeg);
        assert!(
            near(out.get_pixel(8, 16), [220, 20, 20]),
            "{:?}",
            out.get_pixel(8, 16)
        );
        assert!(
            near(out.get_pixel(56, 16), [20, 20, 220]),
            "{:?}",
            out.get_pixel(56, 16)
        );
    }

    #[test]
    fn exif_orientation_is_applied_before_the_tag_is_dropped() {
        // Orientation 6: the stored image must be rotated 90° clockwise to
        // display upright, so a 64×32 stored picture shows as 32×64 with the
        // red (stored left) half on top.
        let input = with_segments(&two_colour_jpeg(64, 32), &[exif_app1(Some(6))]);
        let photo = reencode(&input).unwrap();
        assert_eq!((photo.width, photo.height), (32, 64));
        let out = decode(&photo.jpeg);
        assert!(
            near(out.get_pixel(16, 8), [220, 20, 20]),
            "{:?}",
            out.get_pixel(16, 8)
        );
        assert!(
            near(out.get_pixel(16, 56), [20, 20, 220]),
            "{:?}",
            out.get_pixel(16, 56)
        );
        assert!(jpeg_has_no_metadata(&photo.jpeg));
    }

    /// A PNG chunk with a correct CRC.
    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        c.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        c
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn png_text_chunks_do_not_survive_and_alpha_is_flattened() {
        let img = RgbaImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                Rgba([0, 160, 0, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 40, 20, image::ExtendedColorType::Rgba8)
            .unwrap();
        // Insert tEXt and iTXt-like text right after IHDR (8 + 25 bytes).
        let at = 8 + 25;
        let mut with_text = png[..at].to_vec();
        with_text.extend(png_chunk(b"tEXt", b"Comment\0GPS 47.6062,-122.3321"));
        with_text.extend(png_chunk(b"tEXt", b"Author\0Jane Doe, 12 Elm St"));
        with_text.extend_from_slice(&png[at..]);
        assert!(
            image::load_from_memory(&with_text).is_ok(),
            "fixture must be a valid PNG"
        );
        assert!(contains(&with_text, b"Elm St"));

        let photo = reencode(&with_text).unwrap();
        assert!(photo.jpeg.starts_with(&[0xFF, 0xD8]));
        assert!(!contains(&photo.jpeg, b"Elm St") && !contains(&photo.jpeg, b"47.6062"));
        assert!(jpeg_has_no_metadata(&photo.jpeg));
        let out = decode(&photo.jpeg);
        assert!(
            near(out.get_pixel(5, 10), [0, 160, 0]),
            "{:?}",
            out.get_pixel(5, 10)
        );
        // transparent → white, not black
        assert!(
            near(out.get_pixel(35, 10), [255, 255, 255]),
            "{:?}",
            out.get_pixel(35, 10)
        );
    }

    #[test]
    fn large_photos_are_bounded() {
        let photo = reencode(&two_colour_jpeg(3000, 1000)).unwrap();
        assert_eq!(photo.width, MAX_EDGE);
        assert_eq!(photo.height, 683);
        let out = decode(&photo.jpeg);
        assert_eq!(out.dimensions(), (MAX_EDGE, 683));
    }

    #[test]
    fn garbage_and_empty_are_errors() {
        assert!(matches!(reencode(b""), Err(PhotoError::Empty)));
        assert!(matches!(
            reencode(b"hello, this is not a picture at all"),
            Err(PhotoError::NotAnImage)
        ));
        assert!(matches!(
            reencode(&[0u8; 1000]),
            Err(PhotoError::NotAnImage)
        ));
        // A GIF header: recognised, refused by name.
        let err = reencode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap_err();
        assert!(matches!(err, PhotoError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("JPEG, PNG or WebP"));
        // A truncated JPEG: right magic, broken body.
        let jpeg = two_colour_jpeg(64, 64);
        let err = reencode(&jpeg[..jpeg.len() / 3]).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt(_)), "{err:?}");
        // Too many bytes is refused before decoding.
        let big = vec![0u8; MAX_UPLOAD_BYTES + 1];
        assert!(matches!(reencode(&big), Err(PhotoError::TooManyBytes(_))));
    }

    /// A minimal PNG header declaring `w`×`h` RGBA followed by a tiny IDAT:
    /// decoding it fully would need w*h*4 bytes.
    fn png_bomb(w: u32, h: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        png.extend(png_chunk(b"IHDR", &ihdr));
        // zlib stream of a few zero bytes (valid but far too short)
        png.extend(png_chunk(
            b"IDAT",
            &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
        ));
        png.extend(png_chunk(b"IEND", &[]));
        png
    }

    /// A JPEG whose SOF declares `w`×`h`: a real small JPEG with the frame
    /// header's dimensions patched.
    fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
        let mut j = two_colour_jpeg(16, 16);
        let sof = j
            .windows(2)
            .position(|m| m == [0xFF, 0xC0])
            .expect("baseline SOF0");
        j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        j
    }

    #[test]
    fn decompression_bombs_are_refused_from_the_header() {
        // 100000 × 100000 RGBA would be 40 GB.
        let err = reencode(&png_bomb(100_000, 100_000)).unwrap_err();
        assert!(
            matches!(
                err,
                PhotoError::TooLarge {
                    width: 100_000,
                    height: 100_000
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("too large"));
        // Within each side limit but over the pixel budget: 11000 × 11000.
        let err = reencode(&png_bomb(11_000, 11_000)).unwrap_err();
        assert!(matches!(err, PhotoError::TooLarge { .. }), "{err:?}");
        // JPEG: 65000 × 65000.
        let err = reencode(&jpeg_bomb(65_000, 65_000)).unwrap_err();
        assert!(
            matches!(err, PhotoError::TooLarge { .. } | PhotoError::LimitExceeded),
            "{err:?}"
        );
    }

    #[test]
    fn webp_is_accepted() {
        let img = RgbImage::from_fn(30, 30, |_, _| Rgb([200, 180, 0]));
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(img.as_raw(), 30, 30, image::ExtendedColorType::Rgb8)
            .unwrap();
        let photo = reencode(&webp).unwrap();
        assert_eq!((photo.width, photo.height), (30, 30));
        assert!(near(decode(&photo.jpeg).get_pixel(15, 15), [200, 180, 0]));
    }

    #[test]
    fn segment_walker_reads_what_it_should() {
        assert!(jpeg_segments(b"not a jpeg").is_empty());
        assert!(!jpeg_has_no_metadata(b"not a jpeg"));
        let plain = two_colour_jpeg(8, 8);
        let segs = jpeg_segments(&plain);
        assert_eq!(segs.last().map(|s| s.0), Some(0xDA));
        assert!(jpeg_has_no_metadata(&plain));
    }
}
