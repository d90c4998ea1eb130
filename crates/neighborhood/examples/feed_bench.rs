//! Feed latency benchmark (not a test): fills a neighborhood database with
//! `--posts` posts spread over a city-sized disk of resolution-8 cells
//! (k = 12 rings, ≈ 470 cells, ≈ 22 km across), then times `--queries`
//! feed queries (3 km radius, first page of 30, random home cells near the
//! middle) and prints p50/p99 of the SQL query alone (`feed_ids`) and of
//! the whole `feed()` call that builds the JSON page.
//!
//! Usage: feed_bench <database-url> [--posts N] [--queries N]

use std::time::Instant;

use porchlight_neighborhood::accounts::Role;
use porchlight_neighborhood::posts::Category;
use porchlight_neighborhood::{area, Neighborhood};
use porchlight_vault::keys::KdfParams;
use rand::Rng;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .ok_or("usage: feed_bench <database-url> [--posts N] [--queries N]")?;
    let opt = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args
                .get(i + 1)
                .ok_or(format!("{name} needs a value"))?
                .parse()?),
            None => Ok(default),
        }
    };
    let posts = opt("--posts", 1_000_000)?;
    let queries = opt("--queries", 2_000)?;
    let n = Neighborhood::open_with(url, KdfParams::insecure_for_tests()).await?;
    let centre = h3o::LatLng::new(47.6205, -122.3493)?.to_cell(h3o::Resolution::Eight);
    let city: Vec<h3o::CellIndex> = centre.grid_disk(12);
    let inner: Vec<h3o::CellIndex> = centre.grid_disk(6);
    let author = match n.user_id("bench").await {
        Ok(id) => id,
        Err(_) => {
            n.create_user("bench", "bench-password-123", "Bench", Role::Neighbor, None)
                .await?
        }
    };
    let have: i64 = n.feed_ids(&city, None, i64::MAX, i64::MAX).await?.len() as i64;
    let mut rng = rand::thread_rng();
    if (have as usize) < posts {
        let t = Instant::now();
        let now = jiff::Timestamp::now().as_millisecond();
        let mut left = posts - have as usize;
        while left > 0 {
            let batch = left.min(20_000);
            let rows: Vec<(h3o::CellIndex, i64)> = (0..batch)
                .map(|_| {
                    let cell = city[rng.gen_range(0..city.len())];
                    // Half the posts at resolution 9 (indexed by their parent).
                    let cell = if rng.gen_bool(0.5) {
                        cell.children(h3o::Resolution::Nine)
                            .nth(rng.gen_range(0..7))
                            .unwrap_or(cell)
                    } else {
                        cell
                    };
                    (cell, now - rng.gen_range(0..365 * 24 * 3_600_000i64))
                })
                .collect();
            n.insert_posts_bulk(author, Category::Wildlife, &rows)
                .await?;
            left -= batch;
        }
        eprintln!(
            "inserted {} posts in {:.1} s",
            posts - have as usize,
            t.elapsed().as_secs_f64()
        );
        // What a running server's store has after a while (autovacuum on
        // PostgreSQL; `ANALYZE` once on SQLite): statistics, and on
        // PostgreSQL a visibility map so index-only scans apply.
        n.analyze().await?;
    }
    let viewer = n.viewer(author).await?;
    let (mut q_ms, mut f_ms) = (Vec::new(), Vec::new());
    for i in 0..queries + 100 {
        let home = inner[rng.gen_range(0..inner.len())];
        let cells = area::feed_cells(home, 3.0);
        let t = Instant::now();
        let ids = n.feed_ids(&cells, None, i64::MAX, 30).await?;
        let q = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(ids.len(), 30);
        let mut v = viewer.clone();
        v.home_cell = Some(home);
        let t = Instant::now();
        n.feed(&v, Some(3.0), None, None, None).await?;
        let f = t.elapsed().as_secs_f64() * 1e3;
        if i >= 100 {
            q_ms.push(q);
            f_ms.push(f);
        }
    }
    let cells = area::feed_cells(centre, 3.0).len();
    println!(
        "store={:?} posts={} cells_3km={} queries={} query_p50_ms={:.2} query_p99_ms={:.2} feed_p50_ms={:.2} feed_p99_ms={:.2}",
        n.dialect(),
        posts,
        cells,
        queries,
        pct(&mut q_ms, 0.5),
        pct(&mut q_ms, 0.99),
        pct(&mut f_ms, 0.5),
        pct(&mut f_ms, 0.99)
    );
    n.close().await;
    Ok(())
}
